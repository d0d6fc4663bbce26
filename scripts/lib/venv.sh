# Sourced by scripts/demo and scripts/test: make sure .venv exists and holds this project.
# Usage: source scripts/lib/venv.sh [dev]
# Needs only a Python >= 3.11 and the package registry. Re-installs only when pyproject.toml
# or constraints.txt change.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"

find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV ..." >&2
  "$(find_python)" -m venv "$VENV"
fi

stamp_id="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
stamp="$VENV/.installed-${stamp_id}-${EXTRAS:-runtime}"
# A dev install holds everything the runtime needs, so it satisfies a runtime request too.
satisfied=""
[ -f "$stamp" ] && satisfied=1
[ -z "$EXTRAS" ] && [ -f "$VENV/.installed-${stamp_id}-dev" ] && satisfied=1
if [ -z "$satisfied" ]; then
  echo "Installing the project into .venv (first run, or dependencies changed) ..." >&2
  target="$ROOT"
  [ -n "$EXTRAS" ] && target="$ROOT[$EXTRAS]"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c "$ROOT/constraints.txt" -e "$target"
  rm -f "$VENV"/.installed-*-"${EXTRAS:-runtime}"
  touch "$stamp"
fi
