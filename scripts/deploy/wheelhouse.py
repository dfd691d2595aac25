"""Fill a wheelhouse with every wheel the image's pip may need, whatever its patch release.

    python scripts/deploy/wheelhouse.py DEST REQUIREMENT...    (what `make wheels` runs)

pip chooses dependencies by the environment markers of the interpreter it runs on, and a marker
may name a patch release: redis needs async-timeout below Python 3.11.3, so Debian bookworm's
3.11.2 needs a wheel that a newer 3.11 on the host would never fetch. So the requirements are
resolved here with `pip wheel` as usual, then every dependency whose marker holds on some patch
release of this interpreter's minor version is added, with its own dependencies, until nothing
is missing. The image builds with `--network none` and its own pip picks what its Python needs.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ModuleNotFoundError:  # a bare venv: pip always carries its own copy
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

#: Patch releases tried for each marker: more than any minor version has had.
PATCHES = range(0, 40)


def pip_wheel(dest: Path, requirements: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(dest)]
    subprocess.run([*command, *requirements], check=True)


def name_of(wheel: Path) -> str:
    return canonicalize_name(wheel.name.split("-", 1)[0])


def requires(wheel: Path) -> list[Requirement]:
    """The Requires-Dist lines of a wheel's metadata."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(metadata).decode())
    return [Requirement(line) for line in message.get_all("Requires-Dist") or []]


def environments() -> list[dict[str, str]]:
    """This interpreter's marker environment at every patch release of its minor version."""
    here = default_environment()
    minor = here["python_version"]
    return [dict(here, python_full_version=f"{minor}.{patch}", extra="") for patch in PATCHES]


def missing(dest: Path) -> list[str]:
    """Dependencies some patch release needs that the wheelhouse lacks (markers dropped)."""
    present = {name_of(wheel) for wheel in dest.glob("*.whl")}
    needed: dict[str, str] = {}
    envs = environments()
    for wheel in sorted(dest.glob("*.whl")):
        for requirement in requires(wheel):
            name = canonicalize_name(requirement.name)
            marker = requirement.marker
            if name in present or marker is None:
                continue
            if any(marker.evaluate(env) for env in envs):
                requirement.marker = None
                needed[name] = str(requirement)
    return sorted(needed.values())


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    dest = Path(argv[0])
    pip_wheel(dest, argv[1:])
    added: list[str] = []
    while extra := missing(dest):
        if set(extra) <= set(added):  # fetched, yet still missing: never loop on it
            print(f"wheelhouse: no wheel for {', '.join(extra)}", file=sys.stderr)
            return 1
        pip_wheel(dest, extra)
        added += extra
    if added:
        print(f"wheelhouse: added for other patch releases: {', '.join(added)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
