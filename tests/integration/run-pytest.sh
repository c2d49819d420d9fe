#!/bin/sh
# Test driver for "make check": runs one pytest file with Debian's Python,
# which has python3-winrm and python3-pytest.
test -n "$1" || { echo "usage: $0 test_file.py" >&2; exit 2; }
PY=${WINRMD_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import pytest, winrm' 2>/dev/null; then
	echo "SKIP: $PY lacks pytest or winrm (python3-pytest, python3-winrm)"
	exit 77
fi
PATH=$PATH:$HOME/.dotnet/tools
export PATH
PYTHONDONTWRITEBYTECODE=1
OPENSSL_CONF=${OPENSSL_CONF:-$(dirname "$0")/openssl-legacy.cnf}
export PYTHONDONTWRITEBYTECODE OPENSSL_CONF
exec "$PY" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
	-rs "$@"
