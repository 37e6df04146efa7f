#!/usr/bin/env bash
# Create .venv and install the pinned dependencies (idempotent; re-runs only when the
# requirements change). Checks the system tools the platform needs and installs the
# missing ones with apt when running as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
UV_VERSION="0.13.8"
STAMP=".venv/.installed"

need_apt=()
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || need_apt+=(openjdk-17-jre-headless)
# The production-topology test (tests/production) runs compose's PostgreSQL and Redis.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ "${BROWSER_TESTS:-0}" = "1" ] && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${need_apt[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "bootstrap: missing system packages: ${need_apt[*]} (install them, e.g. with apt-get)" >&2
    exit 1
  fi
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "bootstrap: $PYTHON not found; the platform needs Python 3.11 (set PYTHON=...)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$STAMP" ] || [ requirements.txt -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "bootstrap: installing pinned dependencies (requirements.txt)"
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  .venv/bin/uv pip install -q --python .venv/bin/python -r requirements.txt
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  touch "$STAMP"
fi
