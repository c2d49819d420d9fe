#!/bin/sh
# Build winrmd and start a lab endpoint (loopback, generated user and
# certificate, credentials printed and written to DIR/lab.json).
# usage: sh lab.sh [DIR] [PORT]     (defaults: /var/tmp/winrmd-lab 5985)
set -eu
cd "$(dirname "$0")"
dir=${1:-/var/tmp/winrmd-lab}
port=${2:-5985}
sh packaging/debian-deps.sh build lab pwsh
[ -x configure ] || autoreconf -fi
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -s -j"$(nproc)"
PATH=$PATH:$HOME/.dotnet/tools
export PATH
exec ./winrmd --lab "$dir" --port "$port"
