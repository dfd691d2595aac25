"""README's "Testing your client" recipes, read from the README itself, and how to run them.

A recipe is a `###` subsection; its fenced code blocks run as written:
- `console`: each `$ command` runs in bash; the lines after it, up to the next `$`, are its
  output (stdout and stderr together, as a terminal shows them).
- `python`: runs with this interpreter; a `text` block right after it is its stdout.
- `js`: runs in a browser page; a `text` block right after it is what it logs.
- `sh`: setup (servers started with `&` run until the recipe ends); it must exit 0.

In expected output a line `...` stands for any number of lines, and `...` inside a line for
any text: for numbers that differ from run to run, such as round trips.

The one change made to what is written: the ports. A recipe talks to `localhost:8080` (and its
upstream to 9001), which on a shared machine may be taken; each run maps them to free ports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Testing your client"
#: The ports recipes are written with, replaced by free ones when they run.
PORTS = (8080, 9001)


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    #: The README line the block starts on (for messages).
    line: int
    #: The `text` block right after a python or js block: what it prints.
    expected: str | None = None


@dataclass
class Recipe:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def starts_servers(self) -> bool:
        """True when the recipe starts its own wsrelay (an `sh` block with `wsrelay serve`)."""
        return any(b.lang == "sh" and "wsrelay serve" in b.text for b in self.blocks)


_FENCE = re.compile(r"^```(\w*)\s*$")


def read_recipes(text: str | None = None) -> list[Recipe]:
    """The recipes of README's section, in order, with their code blocks."""
    lines = (README.read_text() if text is None else text).splitlines()
    start = lines.index(SECTION)
    recipes: list[Recipe] = []
    raw: list[tuple[str, str, int]] = []
    i = start + 1
    while i < len(lines) and not lines[i].startswith("## "):
        line = lines[i]
        if line.startswith("### "):
            _attach(recipes, raw)
            recipes.append(Recipe(line[4:].strip()))
            raw = []
        fence = _FENCE.match(line)
        if fence and recipes:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            raw.append((fence[1], "\n".join(lines[i + 1 : end]) + "\n", i + 1))
            i = end
        i += 1
    _attach(recipes, raw)
    return recipes


def _attach(recipes: list[Recipe], raw: list[tuple[str, str, int]]) -> None:
    """Pairs each python/js block with the `text` block that follows it."""
    if not recipes:
        return
    for n, (lang, text, line) in enumerate(raw):
        if lang == "text":
            continue
        following = raw[n + 1] if n + 1 < len(raw) else None
        expected = following[1] if following and following[0] == "text" else None
        recipes[-1].blocks.append(Block(lang, text, line, expected))


def console_steps(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for each `$ ` line of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return [(command, "\n".join(out)) for command, out in steps]


def with_ports(text: str, ports: dict[int, int]) -> str:
    """`text` with each written port replaced by the one the run uses."""
    for written, used in ports.items():
        text = re.sub(rf"\b{written}\b", str(used), text)
    return text


def matches(expected: str, actual: str) -> bool:
    """True when `actual` fits `expected`, where `...` is a wildcard (see the module docstring)."""
    pattern = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            pattern.append(".*".join(map(re.escape, line.split("..."))) + r"\n")
    return re.fullmatch("".join(pattern), actual.strip("\n") + "\n") is not None
