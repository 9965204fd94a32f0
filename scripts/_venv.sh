# Shared by run.sh and test.sh: make .venv with Python 3.11 and install the project into it.
# (The pinned torch/torchvision wheels are built for CPython 3.11.)
set -euo pipefail
find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "CTS-Study needs Python 3.11 (set PYTHON=/path/to/python3.11)." >&2
  return 1
}
ensure_venv() {  # $1: pip extras, e.g. "" or "[test]"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".$1" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import django, torch, celery" # fail early if the install did not complete
}
