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

# What an install was made from: pyproject.toml's hash, the Python it went into, and the extras installed
# (one per line, "extra=name"). A later start with the same pyproject and Python and no new extra skips pip.
VENV_STAMP=.venv/cts-install.stamp
_install_origin() {
  echo "pyproject=$(sha256sum pyproject.toml | cut -d' ' -f1)"
  echo "python=$(.venv/bin/python -c 'import sys; print(sys.version)' | head -n1)"
}
_extras() {  # "[test,s3]" -> one "extra=name" per line, sorted
  local list="${1#[}"; list="${list%]}"
  tr ',' '\n' <<<"$list" | tr -d ' ' | grep -v '^$' | sed 's/^/extra=/' | sort -u || true
}
_install_is_current() {  # $1: pip extras
  [ -f "$VENV_STAMP" ] || return 1
  [ "$(grep -v '^extra=' "$VENV_STAMP")" = "$(_install_origin)" ] || return 1
  [ -z "$(comm -23 <(_extras "$1") <(grep '^extra=' "$VENV_STAMP" | sort))" ] || return 1
  .venv/bin/python -c "import django, torch, celery" 2>/dev/null
}
ensure_venv() {  # $1: pip extras, e.g. "" or "[test]"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  if _install_is_current "$1"; then
    return 0
  fi
  # Extras installed before stay installed (pip removes nothing), so the stamp keeps them.
  local extras pip_ok=1
  extras="$( { _extras "$1"; [ -f "$VENV_STAMP" ] && grep '^extra=' "$VENV_STAMP"; } | sort -u || true)"
  [ "$(grep -v '^extra=' "$VENV_STAMP" 2>/dev/null)" = "$(_install_origin)" ] || extras="$(_extras "$1")"
  rm -f "$VENV_STAMP"  # an interrupted install must not look complete at the next start
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".$1" >.venv/pip-install.log 2>&1 || pip_ok=0
  grep -v "is ignored: it is neither a file nor a directory" .venv/pip-install.log || true
  .venv/bin/python -c "import django, torch, celery" # fail early if the install did not complete
  if [ "$pip_ok" = 1 ]; then
    { _install_origin; [ -z "$extras" ] || echo "$extras"; } > "$VENV_STAMP"
  else
    echo "pip reported an error (above); the install is checked again at the next start." >&2
  fi
}
