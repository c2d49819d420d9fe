#!/bin/sh
# Build the Debian packages winrmd and winrmd-dev from this source tree.
#
# A clean copy is made from the "make dist" tarball (packaging/make-dist.sh)
# in a temporary directory, packaging/debian is put in place as debian/,
# and "dpkg-buildpackage -us -uc -b" runs there.  The .deb files, the
# .buildinfo and .changes files and the build log go to OUTDIR; lintian
# checks the result when it is installed (its findings are printed; only
# errors make this script fail).
#
# usage: packaging/build-deb.sh OUTDIR
# Environment: DEB_BUILD_OPTIONS as for dpkg-buildpackage (for example
# "nocheck" skips the unit tests run during the build, "parallel=N").
# Needs: packaging/debian-deps.sh build package
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/winrmd-deb.XXXXXX")
trap 'rm -rf "$tmp"' 0
trap 'exit 1' 1 2 15

sh "$top/packaging/make-dist.sh" "$tmp" >"$tmp/dist.out"
tarball=$(tail -n 1 "$tmp/dist.out")
version=$(basename "$tarball" .tar.xz)
version=${version#winrmd-}
echo "build-deb: $(basename "$tarball")"

# The orig tarball next to the tree, as a source package build wants it.
cp "$tarball" "$tmp/winrmd_$version.orig.tar.xz"
cd "$tmp"
tar -xJf "winrmd_$version.orig.tar.xz"
src=$tmp/winrmd-$version
# debian/ from the tarball (it carries packaging/), else from this tree.
if [ -d "$src/packaging/debian" ]; then
	cp -a "$src/packaging/debian" "$src/debian"
else
	cp -a "$top/packaging/debian" "$src/debian"
fi

# A tarball of another version than the changelog's latest entry gets an
# entry of its own, in the copy only, so that the package versions follow
# configure.ac.
latest=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
if [ "${latest%-*}" != "$version" ]; then
	{
		printf 'winrmd (%s-0~local1) UNRELEASED; urgency=medium\n\n' \
		    "$version"
		printf '  * Built from the source tree at version %s.\n\n' \
		    "$version"
		printf ' -- %s  %s\n\n' \
		    "$(dpkg-parsechangelog -l "$src/debian/changelog" -S Maintainer)" \
		    "$(date -R)"
		cat "$src/debian/changelog"
	} >"$tmp/changelog" && mv "$tmp/changelog" "$src/debian/changelog"
fi

cd "$src"
echo "build-deb: dpkg-buildpackage -us -uc -b (log: $out/build-deb.log)"
if ! dpkg-buildpackage -us -uc -b >"$out/build-deb.log" 2>&1; then
	tail -n 60 "$out/build-deb.log" >&2
	echo "build-deb: dpkg-buildpackage failed" >&2
	exit 1
fi
cd "$tmp"
for f in ./*.deb ./*.buildinfo ./*.changes; do
	[ -f "$f" ] && cp "$f" "$out/"
done
ls -l "$out"/*.deb

if command -v lintian >/dev/null 2>&1; then
	changes=$(ls "$tmp"/winrmd_*.changes | head -n 1)
	echo "build-deb: lintian"
	lintian --display-info --fail-on error \
	    "$changes" >"$out/lintian.log" 2>&1 && rc=0 || rc=$?
	cat "$out/lintian.log"
	case $rc in
	0) ;;
	2) echo "build-deb: lintian reports errors" >&2; exit 1 ;;
	*) echo "build-deb: lintian failed ($rc)" >&2; exit 1 ;;
	esac
fi
echo "build-deb: done"
