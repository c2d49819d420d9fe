#!/bin/sh
# Make the release tarball, winrmd-VERSION.tar.xz, from this source tree
# without touching it: the tree's files (those git tracks or would track,
# uncommitted changes included; every file when this is not a git
# checkout) are copied to a temporary directory, where autoreconf,
# configure and "make dist" run.  Needs the build dependencies
# (packaging/debian-deps.sh build).
# usage: packaging/make-dist.sh OUTDIR
# Prints the tarball's path on the last line of standard output.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/winrmd-dist.XXXXXX")
trap 'rm -rf "$tmp"' 0
trap 'exit 1' 1 2 15

mkdir "$tmp/src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	# Files deleted in the work tree but still in the index are skipped.
	(cd "$top" && git ls-files -z --cached --others --exclude-standard) |
	    (cd "$top" && xargs -0 sh -c 'for f; do [ -e "$f" ] &&
	    printf "%s\0" "$f"; done' sh) |
	    (cd "$top" && xargs -0 cp -P --parents -t "$tmp/src")
else
	(cd "$top" && tar -cf - --exclude='./build*' \
	    --exclude=./autom4te.cache . ) | (cd "$tmp/src" && tar -xf -)
fi
cd "$tmp/src"
autoreconf -fi >"$tmp/autoreconf.log" 2>&1 ||
    { cat "$tmp/autoreconf.log" >&2; exit 1; }
mkdir "$tmp/build"
cd "$tmp/build"
../src/configure -q >"$tmp/configure.log" 2>&1 ||
    { cat "$tmp/configure.log" >&2; exit 1; }
make -s dist >"$tmp/dist.log" 2>&1 || { cat "$tmp/dist.log" >&2; exit 1; }
set -- winrmd-*.tar.xz
[ -f "$1" ] || { echo "make dist made no tarball" >&2; exit 1; }
cp "$1" "$out/"
echo "$out/$1"
