#!/usr/bin/env bash
# Create the course's virtual environment at $1. Debian and Ubuntu ship `venv` in a separate
# package (python3-venv); install it when we may, otherwise say which command does.
set -euo pipefail
venv=${1:-.venv}

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    exit 0
fi

if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "python3 -m venv failed; installing Debian's python3-venv package"
        apt-get update -qq
        apt-get install -y -qq python3-venv
        python3 -m venv "$venv"
    else
        echo "error: python3 -m venv failed. On Debian or Ubuntu run: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi
