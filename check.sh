#!/bin/sh
# Install the test dependencies, build, and run the whole test suite.
# usage: sh check.sh
# WINRMD_BUILD (default build-check) names the build directory and
# WINRMD_CONFIGURE (default --enable-werror) the configure options, e.g.
# WINRMD_CONFIGURE="--enable-werror --enable-sanitizers".
set -eu
cd "$(dirname "$0")"
top=$(pwd)
build=${WINRMD_BUILD:-build-check}
flags=${WINRMD_CONFIGURE:---enable-werror}
sh packaging/debian-deps.sh build test pwsh
PATH=$PATH:$HOME/.dotnet/tools
export PATH
[ -x configure ] || autoreconf -fi
mkdir -p "$build"
cd "$build"
# shellcheck disable=SC2086
"$top/configure" -q $flags
make -s -j"$(nproc)"
rc=0
make -j"$(nproc)" check || rc=$?
if [ -f test-suite.log ]; then
	grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' test-suite.log
	[ $rc -eq 0 ] || sed -n '/^FAIL\|^ERROR/,$p' test-suite.log | head -400
fi
exit $rc
