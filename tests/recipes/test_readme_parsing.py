"""How the recipe runner reads README and compares output: without servers."""

from __future__ import annotations

from tests.recipes.readme import console_steps, matches, read_recipes, with_ports

SAMPLE = """\
# wsrelay
## Testing your client
Intro.

### First recipe

```python
print("hi")
```

```text
hi
```

```console
$ echo one
one
$ echo two; echo three
two
three
```

### Second recipe (with its servers)

```sh
WSRELAY_PORT=9001 wsrelay serve &
```

```js
console.log("x")
```
## Next section

### Not a recipe

```python
print("never")
```
"""


def test_recipes_are_the_subsections_and_python_pairs_with_its_output() -> None:
    first, second = read_recipes(SAMPLE)
    assert first.title == "First recipe"
    assert [(b.lang, b.text, b.expected) for b in first.blocks] == [
        ("python", 'print("hi")\n', "hi\n"),
        ("console", "$ echo one\none\n$ echo two; echo three\ntwo\nthree\n", None),
    ]
    assert not first.starts_servers
    assert second.title == "Second recipe (with its servers)"
    assert second.starts_servers
    assert [b.lang for b in second.blocks] == ["sh", "js"]
    assert second.blocks[1].expected is None


def test_console_steps_split_commands_from_their_output() -> None:
    assert console_steps("$ a\n1\n2\n$ b\n") == [("a", "1\n2"), ("b", "")]


def test_ports_are_replaced_as_whole_numbers_only() -> None:
    text = "ws://localhost:8080/x WSRELAY_PORT=9001 18080 80801"
    assert with_ports(text, {8080: 41234, 9001: 41235}) == (
        "ws://localhost:41234/x WSRELAY_PORT=41235 18080 80801"
    )


def test_dots_stand_for_lines_and_for_text_within_a_line() -> None:
    assert matches("a\nb\n", "a\nb\n")
    assert not matches("a\nb\n", "a\nb\nc\n")
    assert matches("a\n...\nz\n", "a\nz\n")
    assert matches("a\n...\nz\n", "a\n1\n2\nz\n")
    assert matches("pong after ... ms\n", "pong after 0.42 ms\n")
    assert not matches("pong after ... ms\n", "pong after 0.42 s\n")
    assert not matches("x...\n", "x\ny\n")  # within a line, never across lines
    assert matches("(1.5) [a]\n", "(1.5) [a]")  # the rest is literal
    assert not matches("(1.5) [a]\n", "(105) [a]")
