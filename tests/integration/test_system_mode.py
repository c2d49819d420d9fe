"""System mode: Basic through PAM, shells running as the authenticated
user, the service-wide allow list, and login throttling.  The daemon runs
as root; pam_wrapper (pam_matrix) and nss_wrapper stand in for the
machine's PAM stack and user database, so nothing on the host changes —
they are the fakes here, the daemon's PAM, NSS and privilege code is real.
"""
import os
import pathlib
import shutil
import tempfile

import pytest
from winrm.exceptions import InvalidCredentialsError, WinRMError

PAMW = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"
NSSW = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so"
MATRIX = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"
# Linux-PAM's own pam_env (libpam-modules), as the session module whose
# effect a shell can see.
PAM_ENV = "/usr/lib/x86_64-linux-gnu/security/pam_env.so"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="system mode needs root"),
    pytest.mark.skipif(not all(os.path.exists(p) for p in (PAMW, NSSW,
                                                          MATRIX)),
                       reason="needs libpam-wrapper and libnss-wrapper"),
]


@pytest.fixture
def homes():
    # pytest's own temporary directories are private to root; the users'
    # home directories must be reachable by them.
    d = tempfile.mkdtemp(prefix="winrmd-homes-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def system_lab_factory(lab_factory, tmp_path, homes):
    for name, uid in (("alice", 4242), ("bob", 4243), ("carol", 4244)):
        (homes / name).mkdir(parents=True)
        os.chown(homes / name, uid, uid)
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        f"alice:x:4242:4242:Alice:{homes}/alice:/bin/sh\n"
        f"bob:x:4243:4243:Bob:{homes}/bob:/bin/sh\n"
        f"carol:x:4244:4244:Carol:{homes}/carol:/bin/sh\n")
    (tmp_path / "group").write_text(
        "root:x:0:\nalice:x:4242:\nbob:x:4243:\ncarol:x:4244:\n"
        "winrmd-users:x:5000:alice,carol\noperators:x:5001:alice\n")
    # pam_wrapper reaches the shells' commands too (LD_PRELOAD), which
    # run as the users: its files must be readable by them.
    pamroot = homes / "pam"
    pamroot.mkdir(mode=0o755)
    pam = pamroot / "pam.d"
    pam.mkdir(mode=0o755)
    passdb = pamroot / "passdb"
    passdb.write_text("alice:Alice-Passw0rd:winrmd\n"
                      "bob:Bob-Passw0rd:winrmd\n"
                      "carol:Carol-Passw0rd:winrmd\n")
    envfile = pamroot / "session-env"
    envfile.write_text("WINRMD_PAM_SESSION=opened\n")
    (pam / "winrmd").write_text(
        f"auth required {MATRIX} passdb={passdb}\n"
        f"account required {MATRIX} passdb={passdb}\n"
        f"session required {PAM_ENV} envfile={envfile} "
        f"conffile=/dev/null readenv=1\n")
    env = dict(LD_PRELOAD=f"{PAMW} {NSSW}", PAM_WRAPPER="1",
               PAM_WRAPPER_SERVICE_DIR=str(pam),
               NSS_WRAPPER_PASSWD=str(tmp_path / "passwd"),
               NSS_WRAPPER_GROUP=str(tmp_path / "group"),
               # RTLD_DEEPBIND breaks AddressSanitizer builds.
               NSS_WRAPPER_DISABLE_DEEPBIND="1",
               # (pam_wrapper 1.1.4 reads this name for the same switch)
               UID_WRAPPER_DISABLE_DEEPBIND="1",
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
               ":verify_asan_link_order=0")
    def make(config_lines=()):
        return lab_factory(args=[
            "-o", "Service.UserMode=false",
            "-o", "Service.MaxAuthFailures=5",
            "-o", "Service.HostPassEnvironment=LANG LD_PRELOAD "
                  "PAM_WRAPPER PAM_WRAPPER_SERVICE_DIR "
                  "NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP "
                  "NSS_WRAPPER_DISABLE_DEEPBIND UID_WRAPPER_DISABLE_DEEPBIND "
                  "ASAN_OPTIONS UBSAN_OPTIONS"],
            env=env, config_lines=config_lines)
    return make


@pytest.fixture
def system_lab(system_lab_factory):
    return system_lab_factory()


def run(lab, user, password, command):
    p = lab.protocol(username=user, password=password)
    shell = p.open_shell()
    try:
        cid = p.run_command(shell, command)
        out, err, code = p.get_command_output(shell, cid)
        p.cleanup_command(shell, cid)
        return out.decode(), err.decode(), code
    finally:
        p.close_shell(shell)


def test_shell_runs_as_the_authenticated_user(system_lab, homes):
    out, err, code = run(system_lab, "alice", "Alice-Passw0rd",
                         "id -u; id -g; id -G; echo $HOME $USER; pwd")
    uid, gid, groups, env, cwd = out.splitlines()
    assert (uid, gid) == ("4242", "4242")
    assert set(groups.split()) == {"4242", "5000", "5001"}
    assert env == f"{homes}/alice alice"
    assert cwd == f"{homes}/alice"
    assert "AUTH_OK scheme=Basic user=alice" in system_lab.log()


def test_pam_session_for_the_shell(system_lab):
    """The host opens a PAM session for the account (what the session
    modules set reaches the shell) and closes it when the shell ends."""
    out, err, code = run(system_lab, "alice", "Alice-Passw0rd",
                         "echo $WINRMD_PAM_SESSION; id -u")
    assert out.split() == ["opened", "4242"], (out, err)


def test_pam_wrong_password(system_lab):
    with pytest.raises(InvalidCredentialsError):
        run(system_lab, "alice", "not her password", "true")
    assert "AUTH_FAIL scheme=Basic user=alice" in system_lab.log()


def test_user_outside_allow_groups_is_denied(system_lab):
    with pytest.raises(WinRMError) as e:
        run(system_lab, "bob", "Bob-Passw0rd", "id")
    text = str(e.value)
    assert "'http_status_code': 500" in text
    assert "'wsmanfault_code': '5'" in text
    assert "'fault_subcode': 'w:AccessDenied'" in text
    assert "AUTH_DENIED user=bob" in system_lab.log()


def test_failed_logins_are_throttled(system_lab):
    for _ in range(5):
        with pytest.raises(InvalidCredentialsError):
            run(system_lab, "alice", "guess", "true")
    # Now even the right password is refused for a while.
    with pytest.raises(InvalidCredentialsError):
        run(system_lab, "alice", "Alice-Passw0rd", "true")
    assert "AUTH_THROTTLED scheme=Basic user=alice" in system_lab.log()


def test_configuration_allow_lists(system_lab_factory):
    """A session configuration's AllowGroups and AllowUsers narrow the
    service's list: carol may connect (winrmd-users) but is neither in
    the configuration's group nor named in its users."""
    lab = system_lab_factory(config_lines=[
        "[SessionConfiguration cmd]", "AllowGroups = operators",
        "AllowUsers = nobody-else"])
    out, _, _ = run(lab, "alice", "Alice-Passw0rd", "id -u")
    assert out == "4242\n"
    with pytest.raises(WinRMError) as e:
        run(lab, "carol", "Carol-Passw0rd", "id")
    assert "'fault_subcode': 'w:AccessDenied'" in str(e.value)
    assert "ACCESS_DENIED user=carol config=cmd" in lab.log()
    assert lab.winrmctl("shells").stdout.splitlines()[1:] == []


def test_configuration_allow_users(system_lab_factory):
    lab = system_lab_factory(config_lines=[
        "[SessionConfiguration cmd]", "AllowUsers = carol"])
    out, _, _ = run(lab, "carol", "Carol-Passw0rd", "id -u")
    assert out == "4244\n"
    with pytest.raises(WinRMError):
        run(lab, "alice", "Alice-Passw0rd", "id")


def test_configuration_deny_lists(system_lab_factory):
    """DenyGroups wins over AllowGroups; DenyUsers over everything."""
    lab = system_lab_factory(config_lines=[
        "[SessionConfiguration cmd]", "AllowGroups = winrmd-users",
        "DenyGroups = operators"])
    with pytest.raises(WinRMError):
        run(lab, "alice", "Alice-Passw0rd", "id")
    out, _, _ = run(lab, "carol", "Carol-Passw0rd", "id -u")
    assert out == "4244\n"
    lab.stop()
    lab.extra_config = ["[SessionConfiguration cmd]", "DenyUsers = carol"]
    lab.start()
    with pytest.raises(WinRMError):
        run(lab, "carol", "Carol-Passw0rd", "id")
    out, _, _ = run(lab, "alice", "Alice-Passw0rd", "id -u")
    assert out == "4242\n"


def test_run_as_user(system_lab_factory):
    """RunAsUser: the shell runs as that account whoever logged in; the
    shell still belongs to the caller."""
    lab = system_lab_factory(config_lines=[
        "[SessionConfiguration cmd]", "RunAsUser = bob"])
    out, _, _ = run(lab, "alice", "Alice-Passw0rd", "id -u; echo $USER")
    assert out.split() == ["4243", "bob"]
    assert "SHELL_CREATE" in lab.log() and "user=alice" in lab.log()
