#!/bin/sh
# Smoke test of the Debian package: install winrmd_*.deb, run the
# installed daemon without systemd (none need be running), talk to it with
# real clients, upgrade the package under a running shell, and purge it.
#
# usage: packaging/smoke-test.sh DEBDIR
#
# Run as root on a disposable Debian 12 machine (CI): it installs and
# purges the package winrmd, uses /etc/winrmd and /var/lib/winrmd, and
# listens on 127.0.0.1 only.  A winrmd package installed before is purged
# first.  Needs python3-winrm, libpam-wrapper and libnss-wrapper
# (packaging/debian-deps.sh test), and pwsh for the PowerShell check
# (skipped without it).
#
# The daemon runs in system mode with the installed winrmd.conf, changed
# only by -o options: an HTTPS listener on 127.0.0.1 (certificate made by
# "winrmd --lab"), Basic authentication through PAM.  As in
# tests/integration/test_system_mode.py, pam_wrapper (pam_matrix) and
# nss_wrapper stand in for the machine's PAM stack and user database, so
# no account or password of the machine changes; the daemon's PAM, NSS and
# privilege code is real.  The second run starts the daemon as systemd
# would, with its listening socket passed in (LISTEN_FDS) and a
# notification socket (NOTIFY_SOCKET) that must receive READY=1.
#
# Prints one PASS, FAIL or SKIP line per check, and exits 1 if any failed.
# SMOKE_KEEP=1 keeps the temporary directory, with the daemon's logs.
set -u
[ $# -eq 1 ] || { echo "usage: $0 DEBDIR" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
debdir=$(cd "$1" && pwd) || exit 2
export DEBIAN_FRONTEND=noninteractive
unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE

npass=0
nfail=0
pass() { echo "PASS: $*"; npass=$((npass + 1)); }
fail() { echo "FAIL: $*"; nfail=$((nfail + 1)); }
skip() { echo "SKIP: $*"; }
check() {	# check NAME COMMAND...: PASS or FAIL on the command's status
	name=$1
	shift
	if "$@" >"$tmp/check.out" 2>&1; then
		pass "$name"
	else
		fail "$name"
		sed 's/^/    /' "$tmp/check.out" | tail -n 30
	fi
}
finish() {
	echo "smoke test: $npass checks passed, $nfail failed"
	[ "$nfail" -eq 0 ] && exit 0
	exit 1
}

if [ "$(id -u)" -ne 0 ]; then
	echo "FAIL: the smoke test must run as root"
	exit 1
fi
deb=$(ls "$debdir"/winrmd_*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
	echo "FAIL: no winrmd_*.deb in $debdir"
	exit 1
fi

# The users' homes must be reachable by them: a directory of mode 0755.
tmp=$(mktemp -d /tmp/winrmd-smoke.XXXXXX) || exit 1
chmod 755 "$tmp"
daemon=		# pid of the running winrmd
launcher=	# pid of the launcher of the second run
hostpids=	# winrmd-host processes this test left running

cleanup() {
	for p in $daemon $launcher; do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 1
	for p in $daemon $launcher $hostpids; do
		if grep -q winrmd "/proc/$p/cmdline" 2>/dev/null; then
			kill -KILL "$p" 2>/dev/null
		fi
	done
	if [ -n "${SMOKE_KEEP:-}" ]; then
		echo "note: logs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup 0
trap 'exit 1' 1 2 15

# Accounts that exist before the test are left alone at the end; those the
# package creates are removed after the purge, to leave the machine as it
# was.
had_user=no
had_group=no
getent passwd winrmd >/dev/null && had_user=yes
getent group winrmd-users >/dev/null && had_group=yes

installed=$(dpkg-query -W -f='${Package} ${Status}\n' winrmd winrmd-dev \
    2>/dev/null | awk '$NF == "installed" { print $1 }')
if [ -n "$installed" ]; then
	echo "note: purging the package installed before:" $installed
	# shellcheck disable=SC2086
	apt-get purge -y -q $installed >"$tmp/apt-prepurge.log" 2>&1 ||
	    cat "$tmp/apt-prepurge.log"
fi

# ---- installation ---------------------------------------------------------

if apt-get install -y -q --no-install-recommends "$deb" \
    >"$tmp/apt-install.log" 2>&1; then
	pass "apt-get install $(basename "$deb")"
else
	fail "apt-get install $(basename "$deb")"
	tail -n 30 "$tmp/apt-install.log"
	finish
fi

check "the winrmd system account exists" sh -c \
    'getent passwd winrmd | grep -q ":/usr/sbin/nologin$"'
check "the winrmd-users group exists" getent group winrmd-users
check "/var/lib/winrmd is root:root 0700" sh -c \
    'test "$(stat -c "%U:%G %a" /var/lib/winrmd)" = "root:root 700"'
check "conffiles: winrmd.conf, sessions.d, PAM service" sh -c '
    c=$(dpkg-query -W -f="\${Conffiles}" winrmd)
    for f in /etc/winrmd/winrmd.conf /etc/winrmd/sessions.d/cmd.conf \
        /etc/winrmd/sessions.d/powershell-example.conf /etc/pam.d/winrmd; do
        echo "$c" | grep -q " $f " || { echo "not a conffile: $f"; exit 1; }
    done'
check "systemd units installed" test -f /lib/systemd/system/winrmd.service \
    -a -f /lib/systemd/system/winrmd.socket
check "winrmd -t accepts the installed configuration" /usr/sbin/winrmd -t
check "the installed daemon finds its plugins and host program" sh -c '
    /usr/sbin/winrmd -T >/dev/null &&
    test -x /usr/libexec/winrmd-host &&
    test -f /usr/lib/winrmd/plugins/cmd.so &&
    test -f /usr/lib/winrmd/plugins/powershell.so'
check "man -w winrmd finds the page" sh -c \
    'man -w winrmd | grep -q "/usr/share/man/man8/winrmd.8"'
check "man -w winrmd.conf finds the page" man -w 5 winrmd.conf

# ---- test fixtures ---------------------------------------------------------

# A certificate for 127.0.0.1 from a lab endpoint, stopped at once.
/usr/sbin/winrmd --lab "$tmp/lab" --port 0 -q >"$tmp/lab.log" 2>&1 &
labpid=$!
i=0
while [ ! -s "$tmp/lab/lab.json" ] && [ $i -lt 200 ]; do
	kill -0 $labpid 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
kill -TERM $labpid 2>/dev/null
wait $labpid 2>/dev/null
if [ -s "$tmp/lab/cert.pem" ] && [ -s "$tmp/lab/key.pem" ] &&
    [ -s "$tmp/lab/ca.pem" ]; then
	pass "winrmd --lab made a certificate"
else
	fail "winrmd --lab made a certificate"
	tail -n 20 "$tmp/lab.log"
	finish
fi

# Users, groups and PAM rules of their own (see tests/integration/
# test_system_mode.py): alice is in winrmd-users, bob is not.
PAMW=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so
NSSW=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
MATRIX=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so
for f in $PAMW $NSSW $MATRIX; do
	if [ ! -f "$f" ]; then
		fail "$f is missing (libpam-wrapper, libnss-wrapper)"
		finish
	fi
done
mkdir -p "$tmp/homes/alice" "$tmp/homes/bob" "$tmp/pam/pam.d"
chown 4242:4242 "$tmp/homes/alice"
chown 4243:4243 "$tmp/homes/bob"
chmod 755 "$tmp/homes" "$tmp/pam" "$tmp/pam/pam.d"
cat >"$tmp/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
alice:x:4242:4242:Alice:$tmp/homes/alice:/bin/sh
bob:x:4243:4243:Bob:$tmp/homes/bob:/bin/sh
EOF
cat >"$tmp/group" <<EOF
root:x:0:
alice:x:4242:
bob:x:4243:
winrmd-users:x:5000:alice
EOF
cat >"$tmp/pam/passdb" <<EOF
alice:Alice-Passw0rd:winrmd
bob:Bob-Passw0rd:winrmd
root:Root-Passw0rd:winrmd
EOF
cat >"$tmp/pam/pam.d/winrmd" <<EOF
auth required $MATRIX passdb=$tmp/pam/passdb
account required $MATRIX passdb=$tmp/pam/passdb
session required $MATRIX passdb=$tmp/pam/passdb
EOF
chmod 644 "$tmp/passwd" "$tmp/group" "$tmp/pam/passdb" "$tmp/pam/pam.d/winrmd"

# The wrappers' variables, for the daemon (which passes them on to the
# shells, see HostPassEnvironment below): "env $wrapenv COMMAND".  None
# of the paths has a space (mktemp's name, the library paths).
wrapenv="LD_PRELOAD=$PAMW:$NSSW PAM_WRAPPER=1
    PAM_WRAPPER_SERVICE_DIR=$tmp/pam/pam.d NSS_WRAPPER_PASSWD=$tmp/passwd
    NSS_WRAPPER_GROUP=$tmp/group NSS_WRAPPER_DISABLE_DEEPBIND=1
    UID_WRAPPER_DISABLE_DEEPBIND=1"

port=$(/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
url=https://127.0.0.1:$port/wsman

# The daemon's command line: the installed configuration, with an HTTPS
# listener on 127.0.0.1, Basic authentication, and the wrappers' variables
# passed on to the shells.
set -- /usr/sbin/winrmd -f /etc/winrmd/winrmd.conf \
    -o "Listener HTTP.Enabled=false" \
    -o "Listener HTTPS.Address=127.0.0.1" \
    -o "Listener HTTPS.Port=$port" \
    -o "Listener HTTPS.CertificateFile=$tmp/lab/cert.pem" \
    -o "Listener HTTPS.KeyFile=$tmp/lab/key.pem" \
    -o "Listener HTTPS.Enabled=true" \
    -o "Service/Auth.Basic=true" \
    -o "Service.HostPassEnvironment=LANG LD_PRELOAD PAM_WRAPPER PAM_WRAPPER_SERVICE_DIR NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP NSS_WRAPPER_DISABLE_DEEPBIND UID_WRAPPER_DISABLE_DEEPBIND"

# The client: python3-winrm, and tests/integration/psrp for PowerShell.
cat >"$tmp/client.py" <<'EOF'
import os
import sys

import winrm
from winrm.exceptions import InvalidCredentialsError, WinRMError
from winrm.protocol import Protocol

url, ca, what = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]


def protocol(user, password):
    return Protocol(endpoint=url, transport="basic", username=user,
                    password=password, server_cert_validation="validate",
                    ca_trust_path=ca, operation_timeout_sec=20,
                    read_timeout_sec=30)


def run(user, password, command):
    p = protocol(user, password)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, command)
        out, err, code = p.get_command_output(shell, cid)
        p.cleanup_command(shell, cid)
        return out.decode(), err.decode(), code
    finally:
        p.close_shell(shell)


if what == "id":
    out, err, code = run(args[0], args[1], "id -u")
    print(out.strip())
    sys.exit(0 if code == 0 else 1)
elif what == "badpass":
    try:
        run("alice", "not her password", "true")
    except InvalidCredentialsError:
        sys.exit(0)
    print("a wrong password was accepted")
    sys.exit(1)
elif what == "denied":
    try:
        run("bob", "Bob-Passw0rd", "id -u")
    except WinRMError as e:
        if "AccessDenied" in str(e):
            sys.exit(0)
        print(e)
        sys.exit(1)
    print("bob, outside winrmd-users, got a shell")
    sys.exit(1)
elif what == "leave":
    # A shell with a long command, left open: the test disconnects it.
    p = protocol("alice", "Alice-Passw0rd")
    shell = p.open_shell()
    p.run_command(shell, "sleep 600")
    print(shell)
elif what == "psrp":
    sys.path.insert(0, args[0])
    import psrp
    from psrp import PowerShell, RunspacePool, WSManTransport
    tr = WSManTransport(url, "root", "Root-Passw0rd", auth="basic",
                        server_cert_validation="validate", ca_trust_path=ca,
                        operation_timeout=5)
    pool = RunspacePool(tr).open(timeout=60)
    ps = PowerShell(pool).add_script("[Environment]::UserName; 6 * 7")
    out = ps.invoke(timeout=60)
    pool.close()
    print(out)
    sys.exit(0 if [str(x) for x in out] == ["root", "42"] else 1)
EOF
client() {
	timeout 120 /usr/bin/python3 "$tmp/client.py" "$url" "$tmp/lab/ca.pem" "$@"
}

# wait_listening LOG: until the daemon logs its HTTPS listener (20 s).
wait_listening() {
	i=0
	while [ $i -lt 200 ]; do
		grep -q "listening on https://127.0.0.1:$port" "$1" 2>/dev/null &&
		    return 0
		[ -n "$daemon" ] && ! alive "$daemon" && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# alive PID: the process runs (and is not a zombie waiting to be reaped).
alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] &&
	    [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]
}

# stop_daemon: SIGTERM, and wait for it to end (20 s at most).
stop_daemon() {
	kill -TERM "$daemon" 2>/dev/null
	i=0
	while alive "$daemon" && [ $i -lt 200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

bad_log() {
	grep -E "FATAL|fatal:|internal error|AddressSanitizer|runtime error:" \
	    "$1"
}

host_of() {	# the winrmd-host pid of a shell, from the store
	winrmctl shells 2>/dev/null | awk -v id="$1" \
	    'tolower($1) == tolower(id) { print $5 }'
}

# ---- first run: the daemon binds its listener ------------------------------

echo "starting: $*"
env $wrapenv "$@" >"$tmp/run1.log" 2>&1 &
daemon=$!
if wait_listening "$tmp/run1.log"; then
	pass "winrmd starts (system mode, HTTPS on 127.0.0.1:$port)"
else
	fail "winrmd starts (system mode, HTTPS on 127.0.0.1:$port)"
	tail -n 30 "$tmp/run1.log"
	finish
fi

if out=$(client id alice Alice-Passw0rd 2>&1) && [ "$out" = 4242 ]; then
	pass "cmd shell: id -u runs as the mapped user (4242)"
else
	fail "cmd shell: id -u runs as the mapped user (4242)"
	echo "$out" | tail -n 20 | sed 's/^/    /'
fi
check "Basic through PAM refuses a wrong password" client badpass
check "a user outside AllowGroups is refused" client denied

pwsh_found=$(PATH=$PATH:/root/.dotnet/tools command -v pwsh || true)
if [ -n "$pwsh_found" ]; then
	check "PSRP: a runspace pool opens and runs a pipeline (pwsh)" \
	    client psrp "$top/tests/integration"
else
	skip "PSRP: no pwsh on this machine"
fi

check "winrmctl status answers" sh -c \
    'winrmctl status && winrmctl status | grep -q .'
check "winrmctl audit records the logins" sh -c \
    'winrmctl audit --max 1000 | grep -q "AUTH_OK scheme=Basic user=alice"'

# A shell with a running command, disconnected as its client could.
shell1=$(client leave 2>"$tmp/leave.err" | tail -n 1)
if [ -n "$shell1" ] && winrmctl shell disconnect "$shell1" \
    >"$tmp/disc.out" 2>&1; then
	pass "winrmctl shell disconnect"
else
	fail "winrmctl shell disconnect"
	cat "$tmp/leave.err" "$tmp/disc.out" 2>/dev/null | tail -n 20
fi
host1=$(host_of "$shell1")
hostpids="$hostpids $host1"

stop_daemon
if alive "$daemon"; then
	fail "winrmd stops on SIGTERM"
else
	wait "$daemon"
	rc=$?
	[ $rc -eq 0 ] && pass "winrmd stops on SIGTERM (status 0)" ||
	    fail "winrmd stops on SIGTERM (status $rc)"
fi
daemon=
if bad_log "$tmp/run1.log" >"$tmp/bad"; then
	fail "the daemon's log has no errors"
	cat "$tmp/bad"
else
	pass "the daemon's log has no errors"
fi
if [ -n "$host1" ] && grep -q winrmd-host "/proc/$host1/cmdline" 2>/dev/null
then
	pass "the disconnected shell's host survives the stop"
else
	fail "the disconnected shell's host survives the stop"
fi

# ---- upgrade: the same package again, with a changed conffile --------------

echo "# changed by the smoke test" >>/etc/winrmd/winrmd.conf
if apt-get install -y -q --reinstall "$deb" >"$tmp/apt-upgrade.log" 2>&1
then
	pass "reinstall (upgrade path of the maintainer scripts)"
else
	fail "reinstall (upgrade path of the maintainer scripts)"
	tail -n 20 "$tmp/apt-upgrade.log"
fi
check "the changed conffile is kept, no .dpkg-* copies" sh -c '
    grep -q "changed by the smoke test" /etc/winrmd/winrmd.conf &&
    ! ls /etc/winrmd/*.dpkg-* /etc/winrmd/sessions.d/*.dpkg-* 2>/dev/null'
check "/var/lib/winrmd is still root:root 0700" sh -c \
    'test "$(stat -c "%U:%G %a" /var/lib/winrmd)" = "root:root 700"'

# ---- second run: started as systemd starts it -------------------------------

# The launcher binds the listening socket and the notification socket,
# starts winrmd with LISTEN_FDS=1 and NOTIFY_SOCKET, writes winrmd's pid,
# every notification received, and its exit status.
cat >"$tmp/launch.py" <<'EOF'
import os
import socket
import sys

port, state = int(sys.argv[1]), sys.argv[2]
argv = sys.argv[3:]
lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", port))
lsock.listen(64)
npath = os.path.join(state, "notify")
nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
nsock.bind(npath)
pid = os.fork()
if pid == 0:
    os.dup2(lsock.fileno(), 3)
    os.set_inheritable(3, True)
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                      NOTIFY_SOCKET=npath)
    os.execv(argv[0], argv)
lsock.close()
with open(os.path.join(state, "pid"), "w") as f:
    f.write("%d\n" % pid)
nsock.settimeout(0.5)
while True:
    try:
        msg = nsock.recv(4096)
        with open(os.path.join(state, "notified"), "ab") as f:
            f.write(msg.replace(b"\n", b" ") + b"\n")
    except socket.timeout:
        pass
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
with open(os.path.join(state, "status"), "w") as f:
    f.write("%d\n" % os.waitstatus_to_exitcode(status))
EOF
mkdir "$tmp/sd"
env $wrapenv /usr/bin/python3 "$tmp/launch.py" "$port" "$tmp/sd" "$@" \
    >"$tmp/run2.log" 2>&1 &
launcher=$!
i=0
while [ ! -s "$tmp/sd/pid" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
daemon=$(cat "$tmp/sd/pid" 2>/dev/null)
i=0
while ! grep -q "READY=1" "$tmp/sd/notified" 2>/dev/null && [ $i -lt 200 ]
do
	sleep 0.1
	i=$((i + 1))
done
if grep -q "READY=1" "$tmp/sd/notified" 2>/dev/null; then
	pass "READY=1 on NOTIFY_SOCKET once the listeners are up"
else
	fail "READY=1 on NOTIFY_SOCKET once the listeners are up"
	tail -n 20 "$tmp/run2.log"
	wait_listening "$tmp/run2.log"
fi
if grep -q "using the socket systemd passed" "$tmp/run2.log"; then
	pass "socket activation: the listener takes the passed socket"
else
	fail "socket activation: the listener takes the passed socket"
fi
if out=$(client id alice Alice-Passw0rd 2>&1) && [ "$out" = 4242 ]; then
	pass "cmd shell through the passed socket"
else
	fail "cmd shell through the passed socket"
	echo "$out" | tail -n 20 | sed 's/^/    /'
fi

winrmctl shell show "$shell1" >"$tmp/show.out" 2>&1
check "the disconnected shell is back after restart and upgrade" \
    grep -qE "^state[[:space:]]+Disconnected" "$tmp/show.out"

# Reload: RELOADING=1, then READY=1 again.
before=$(grep -c "READY=1" "$tmp/sd/notified" 2>/dev/null)
kill -HUP "$daemon" 2>/dev/null
i=0
while [ "$(grep -c "READY=1" "$tmp/sd/notified")" -le "$before" ] &&
    [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
check "SIGHUP: RELOADING=1 then READY=1" sh -c "
    grep -q RELOADING=1 '$tmp/sd/notified' &&
    test \$(grep -c READY=1 '$tmp/sd/notified') -gt $before"

# Delete the restored shell: its host ends.
if winrmctl shell kill "$shell1" >"$tmp/kill.out" 2>&1; then
	i=0
	while grep -q winrmd-host "/proc/$host1/cmdline" 2>/dev/null &&
	    [ $i -lt 150 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if grep -q winrmd-host "/proc/$host1/cmdline" 2>/dev/null; then
		fail "winrmctl shell kill ends the shell's host"
	else
		pass "winrmctl shell kill ends the shell's host"
	fi
else
	fail "winrmctl shell kill"
	cat "$tmp/kill.out"
fi

# One more disconnected shell, for the removal to deal with.
shell2=$(client leave 2>"$tmp/leave.err" | tail -n 1)
[ -n "$shell2" ] && winrmctl shell disconnect "$shell2" >/dev/null 2>&1
host2=$(host_of "$shell2")
hostpids="$hostpids $host2"

kill -TERM "$daemon" 2>/dev/null
i=0
while [ ! -s "$tmp/sd/status" ] && [ $i -lt 200 ]; do
	sleep 0.1
	i=$((i + 1))
done
status=$(cat "$tmp/sd/status" 2>/dev/null)
[ "$status" = 0 ] && pass "winrmd stops on SIGTERM (status 0)" ||
    fail "winrmd stops on SIGTERM (status ${status:-none})"
grep -q "STOPPING=1" "$tmp/sd/notified" && pass "STOPPING=1 on SIGTERM" ||
    fail "STOPPING=1 on SIGTERM"
wait "$launcher" 2>/dev/null
daemon=
launcher=
if bad_log "$tmp/run2.log" >"$tmp/bad"; then
	fail "the daemon's log has no errors (second run)"
	cat "$tmp/bad"
else
	pass "the daemon's log has no errors (second run)"
fi

# ---- removal ------------------------------------------------------------------

if [ -n "$host2" ] && grep -q winrmd-host "/proc/$host2/cmdline" 2>/dev/null
then
	:
else
	fail "a disconnected shell's host runs before the purge"
fi
if apt-get purge -y -q winrmd >"$tmp/apt-purge.log" 2>&1; then
	pass "apt-get purge winrmd"
else
	fail "apt-get purge winrmd"
	tail -n 20 "$tmp/apt-purge.log"
fi
if grep -iE "warning|error" "$tmp/apt-purge.log" >"$tmp/bad"; then
	fail "the purge prints no warning or error"
	cat "$tmp/bad"
else
	pass "the purge prints no warning or error"
fi
check "nothing of the package is left" sh -c '
    ! dpkg-query -W -f="\${Status}\n" winrmd 2>/dev/null | grep -q installed &&
    test ! -e /etc/winrmd && test ! -e /etc/pam.d/winrmd &&
    test ! -e /var/lib/winrmd && test ! -e /usr/sbin/winrmd &&
    test ! -e /usr/lib/winrmd'
i=0
while [ -n "$host2" ] && grep -q winrmd-host "/proc/$host2/cmdline" \
    2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ -n "$host2" ] && ! grep -q winrmd-host "/proc/$host2/cmdline" 2>/dev/null
then
	pass "the removal ends the hosts of disconnected shells"
else
	fail "the removal ends the hosts of disconnected shells"
fi
check "the winrmd account and winrmd-users group are kept" sh -c \
    'getent passwd winrmd && getent group winrmd-users'

# Leave the machine's accounts as they were.
[ $had_user = no ] && deluser --system --quiet winrmd >/dev/null 2>&1
[ $had_group = no ] && getent group winrmd-users >/dev/null &&
    delgroup --system --quiet winrmd-users >/dev/null 2>&1
[ $had_user = no ] && getent group winrmd >/dev/null &&
    delgroup --system --quiet winrmd >/dev/null 2>&1

finish
