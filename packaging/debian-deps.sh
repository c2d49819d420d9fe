#!/bin/sh
# Install what building, running or testing winrmd needs on Debian 12.
# usage: packaging/debian-deps.sh [build] [lab] [test] [bench] [package] [pwsh]
# (lab: what lab mode uses at run time for NTLM and its Kerberos realm;
# package: what packaging/build-deb.sh and build-rpm.sh need besides
# build; packaging/smoke-test.sh needs build-deb's and test's.)
set -eu
build="build-essential autoconf automake libtool pkg-config \
 libmicrohttpd-dev libxml2-dev libgnutls28-dev libsqlite3-dev \
 libcrypt-dev libkrb5-dev libpam0g-dev libcmocka-dev"
test="python3 python3-pytest python3-winrm python3-requests \
 python3-requests-ntlm python3-requests-kerberos python3-yaml python3-gssapi python3-cryptography \
 python3-jsonschema \
 golang-go golang-github-masterzen-winrm-dev ansible-core ansible \
 krb5-kdc krb5-admin-server krb5-user gss-ntlmssp libpam-wrapper \
 libnss-wrapper curl mandoc clang procps"
lab="gss-ntlmssp krb5-kdc krb5-admin-server krb5-user"
bench="wrk linux-perf valgrind"
package="devscripts debhelper dh-autoreconf fakeroot dpkg-dev lintian rpm \
 man-db"
pkgs=""
want_pwsh=no
for what in "$@"; do
	case $what in
	build) pkgs="$pkgs $build" ;;
	lab) pkgs="$pkgs $lab" ;;
	test) pkgs="$pkgs $test" ;;
	bench) pkgs="$pkgs $bench" ;;
	package) pkgs="$pkgs $package" ;;
	pwsh) want_pwsh=yes ;;
	*) echo "usage: $0 [build] [lab] [test] [bench] [package] [pwsh]" >&2
	   exit 2 ;;
	esac
done
if [ -n "$pkgs" ]; then
	missing=$(dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null |
	    awk '$4 != "installed" { print $1 }'; for p in $pkgs; do
	    dpkg-query -W "$p" >/dev/null 2>&1 || echo "$p"; done)
	if [ -n "$missing" ]; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $pkgs
	fi
fi
if [ $want_pwsh = yes ]; then
	PATH=$PATH:$HOME/.dotnet/tools
	if command -v pwsh >/dev/null 2>&1; then
		:
	elif command -v dotnet >/dev/null 2>&1; then
		dotnet tool install --global PowerShell --version 7.6.9 ||
		    dotnet tool update --global PowerShell --version 7.6.9
	else
		echo "note: no dotnet SDK here, so no pwsh: PowerShell shells" \
		    "will answer with a fault naming the missing program" >&2
	fi
fi
