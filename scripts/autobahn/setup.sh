#!/usr/bin/env bash
# Creates the Python 2.7 virtualenv that runs Autobahn|Testsuite (wstest), which is Python 2 only.
# Idempotent: a stamp naming the pinned version makes a second run return at once.
# Prints the path of the wstest executable on its last line.
#   AUTOBAHN_ENV     where the env lives (default: a cache dir outside the repo, shared by clones)
#   AUTOBAHN_PYTHON2 a python2.7 interpreter (default: found under pyenv or on the PATH)
set -euo pipefail

VERSION="25.10.1"
ENV_DIR="${AUTOBAHN_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wsrelay/autobahn-$VERSION}"
STAMP="$ENV_DIR/.stamp-autobahntestsuite-$VERSION"
WSTEST="$ENV_DIR/py27/bin/wstest"

if [ -f "$STAMP" ] && [ -x "$WSTEST" ]; then
  echo "$WSTEST"
  exit 0
fi

find_python2() {
  local candidate
  if [ -n "${AUTOBAHN_PYTHON2:-}" ]; then
    [ -x "$AUTOBAHN_PYTHON2" ] && echo "$AUTOBAHN_PYTHON2"
    return
  fi
  for candidate in "${PYENV_ROOT:-}"/versions/2.7*/bin/python2.7 \
    "$HOME"/.pyenv/versions/2.7*/bin/python2.7 /root/.pyenv/versions/2.7*/bin/python2.7 \
    "$(command -v python2.7 || true)"; do
    if [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! PY2="$(find_python2)"; then
  echo "autobahn setup: no python2.7 interpreter found (pyenv 2.7.x or python2.7 on the PATH;" \
    "set AUTOBAHN_PYTHON2): Autobahn|Testsuite is Python 2 only" >&2
  exit 3
fi

mkdir -p "$ENV_DIR"
# virtualenv 20.22 dropped Python 2 targets: a small Python 3 env holds the last one that builds them.
if [ ! -x "$ENV_DIR/tools/bin/virtualenv" ]; then
  python3 -m venv "$ENV_DIR/tools"
  "$ENV_DIR/tools/bin/pip" install --quiet 'virtualenv<20.22'
fi
rm -rf "$ENV_DIR/py27"
"$ENV_DIR/tools/bin/virtualenv" --quiet --python "$PY2" "$ENV_DIR/py27" >&2
"$ENV_DIR/py27/bin/pip" install --quiet --disable-pip-version-check "autobahntestsuite==$VERSION" >&2
"$WSTEST" --help >/dev/null
touch "$STAMP"
echo "$WSTEST"
