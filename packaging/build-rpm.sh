#!/bin/sh
# Build the RPM packages winrmd and winrmd-devel from this source tree:
# the "make dist" tarball (packaging/make-dist.sh) and the spec it carries,
# packaging/rpm/winrmd.spec, in a temporary rpmbuild tree.  The .rpm files
# and the build log go to OUTDIR.
#
# On Debian, rpmbuild (package rpm) cannot see the build dependencies,
# which are Debian packages (packaging/debian-deps.sh build), so the spec's
# BuildRequires are not checked (--nodeps).
#
# usage: packaging/build-rpm.sh OUTDIR [rpmbuild options...]
#   e.g. packaging/build-rpm.sh out --without check   (no unit tests)
# Needs: packaging/debian-deps.sh build package
set -eu
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [rpmbuild options]" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
shift
tmp=$(mktemp -d "${TMPDIR:-/tmp}/winrmd-rpm.XXXXXX")
trap 'rm -rf "$tmp"' 0
trap 'exit 1' 1 2 15

for d in BUILD BUILDROOT RPMS SOURCES SPECS SRPMS; do
	mkdir -p "$tmp/$d"
done
sh "$top/packaging/make-dist.sh" "$tmp/SOURCES" >"$tmp/dist.out"
tarball=$(tail -n 1 "$tmp/dist.out")
version=$(basename "$tarball" .tar.xz)
version=${version#winrmd-}
echo "build-rpm: $(basename "$tarball")"
tar -xJf "$tarball" -C "$tmp" "winrmd-$version/packaging/rpm/winrmd.spec"
mv "$tmp/winrmd-$version/packaging/rpm/winrmd.spec" "$tmp/SPECS/"

echo "build-rpm: rpmbuild -bb --nodeps (log: $out/build-rpm.log)"
if ! rpmbuild -bb --nodeps \
    --define "_topdir $tmp" \
    --define "winrmd_version $version" \
    "$@" "$tmp/SPECS/winrmd.spec" >"$out/build-rpm.log" 2>&1; then
	tail -n 60 "$out/build-rpm.log" >&2
	echo "build-rpm: rpmbuild failed" >&2
	exit 1
fi
find "$tmp/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
for f in "$out"/*.rpm; do
	[ -f "$f" ] || { echo "build-rpm: no package was made" >&2; exit 1; }
	echo "$(basename "$f"):"
	rpm -qp --qf '  %{NAME} %{VERSION}-%{RELEASE} %{ARCH}, %{SIZE} bytes\n' \
	    "$f"
done
echo "build-rpm: done"
