"""Quotas at their limit and one past it, with the faults Windows sends,
as pywinrm reads them: shells per user and concurrent users ([Winrs] and
per session configuration), commands per shell, and operations in
progress per user (with the MSFT_WmiError detail Ansible looks for)."""
import os
import re
import signal
import threading
import time

import pytest
from winrm.exceptions import WinRMError

from wsman_raw import Wire, command_body, envelope, receive_body

CMD = "[SessionConfiguration cmd]"


def fault_fields(exc):
    """The fault pywinrm 0.3.0 reports: its WinRMError's text carries a
    dict of the fault's fields ('http_status_code', 'wsmanfault_code',
    'fault_code', 'fault_subcode')."""
    text = str(exc)
    fields = dict(re.findall(r"'(\w+)': '?([^',}]*)'?", text))
    fields["code"] = int(fields.get("http_status_code", 0) or 0)
    return fields


def open_shells(lab, n, **kw):
    p = lab.protocol(**kw)
    return p, [p.open_shell() for _ in range(n)]


@pytest.mark.parametrize("where", ["winrs", "configuration"])
def test_shells_per_user(lab_factory, where):
    lines = (["[Winrs]", "MaxShellsPerUser = 2"] if where == "winrs" else
             [CMD, "MaxShellsPerUser = 2"])
    lab = lab_factory(config_lines=lines)
    p, shells = open_shells(lab, 2)
    with pytest.raises(WinRMError) as e:
        p.open_shell()
    f = fault_fields(e.value)
    assert f["code"] == 500 and f["fault_subcode"] == "w:QuotaLimit", f
    assert f["wsmanfault_code"] == "2150859173", f
    assert "maximum number of 2 concurrent shells" in str(e.value)
    # One closed makes room again.
    p.close_shell(shells.pop())
    shells.append(p.open_shell())
    for s in shells:
        p.close_shell(s)


@pytest.mark.parametrize("where", ["winrs", "configuration"])
def test_concurrent_users(lab_factory, where):
    lines = (["[Winrs]", "MaxConcurrentUsers = 1"] if where == "winrs" else
             [CMD, "MaxConcurrentUsers = 1"])
    lab = lab_factory(config_lines=lines)
    r = lab.winrmctl("user", "add", "second", "--password-stdin",
                     input="Second-Passw0rd\n")
    assert r.returncode == 0, r.stderr
    p, shells = open_shells(lab, 2)        # the same user: allowed
    other = lab.protocol(username="second", password="Second-Passw0rd")
    with pytest.raises(WinRMError) as e:
        other.open_shell()
    f = fault_fields(e.value)
    assert f["fault_subcode"] == "w:QuotaLimit", f
    assert f["wsmanfault_code"] == "2150859179", f
    for s in shells:
        p.close_shell(s)
    s = other.open_shell()                 # the first user left
    other.close_shell(s)


def test_commands_per_shell(lab_factory):
    lab = lab_factory(config_lines=[CMD,
                                    "MaxConcurrentCommandsPerShell = 2"])
    p = lab.protocol()
    shell = p.open_shell()
    cids = [p.run_command(shell, "sleep", ["30"]) for _ in range(2)]
    with pytest.raises(WinRMError) as e:
        p.run_command(shell, "true")
    assert "MaxConcurrentCommandsPerShell" in str(e.value)
    p.cleanup_command(shell, cids.pop())   # terminate frees the slot
    cids.append(p.run_command(shell, "true"))
    for c in cids:
        p.cleanup_command(shell, c)
    p.close_shell(shell)


def test_operations_per_user(lab_factory):
    """Two Receives wait (operations in progress); a third request of the
    same user is refused with 2150859174 in both the WSManFault and the
    MSFT_WmiError detail, which is how Ansible recognises it."""
    lab = lab_factory(args=["-o",
                            "Service.MaxConcurrentOperationsPerUser=2"])
    w = Wire(lab)
    p = lab.protocol()
    shell = p.open_shell()
    cids = [p.run_command(shell, "sleep", ["6"]) for _ in range(2)]
    results = []

    def park(cid):
        env, _ = envelope("Receive", body=receive_body(cid),
                          selectors={"ShellId": shell}, to=w.url,
                          timeout="PT5S")
        results.append(Wire(lab).soap(env))

    threads = [threading.Thread(target=park, args=(c,)) for c in cids]
    for t in threads:
        t.start()
    try:
        deadline = 50
        while deadline:
            # Wait until both Receives are parked in the daemon.
            st = dict(line.split("\t") for line in
                      lab.winrmctl("status").stdout.splitlines())
            if st.get("requests_active") == "2":
                break
            deadline -= 1
            threading.Event().wait(0.1)
        env, _ = envelope("Command", body=command_body("true"),
                          selectors={"ShellId": shell}, to=w.url)
        r = w.soap(env)
        assert r.status == 500, r
        text = r.text
        assert "2150859174" in text
        assert "MSFT_WmiError" in text and \
            "<p:error_Code xsi:type=\"cim:cimUnsignedInt\">2150859174" \
            in text, text
        assert "QUOTA user=%s quota=MaxConcurrentOperationsPerUser" % \
            lab.user in lab.log()
    finally:
        for t in threads:
            t.join(30)
    # The parked Receives finished: room again.
    cid = p.run_command(shell, "true")
    p.cleanup_command(shell, cid)
    for c in cids:
        p.cleanup_command(shell, c)
    p.close_shell(shell)


def limits_mechanism():
    import subprocess
    from conftest import binary
    out = subprocess.run([binary("winrmd"), "-T", "-f", "/dev/null"],
                         capture_output=True, text=True, timeout=30).stdout
    return out.splitlines()[0]


@pytest.mark.parametrize("where", ["winrs", "configuration"])
def test_processes_per_shell(lab_factory, where):
    """The shell's whole process tree is limited, as a Windows job object
    limits it: forks past the limit fail inside the command."""
    if "no process limit" in limits_mechanism():
        pytest.skip("no control groups here: " + limits_mechanism())
    lines = (["[Winrs]", "MaxProcessesPerShell = 8"] if where == "winrs"
             else [CMD, "MaxProcessesPerShell = 8"])
    lab = lab_factory(config_lines=lines)
    r = lab.session().run_cmd(
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; "
        "do sleep 2 & done; wait")
    # The host, sh and a few sleeps fit; twenty do not.
    text = (r.std_out + r.std_err).decode()
    assert "fork" in text.lower() or "resource" in text.lower(), text
    # A shell under the limit works as usual.
    r = lab.session().run_cmd("echo fine")
    assert r.std_out == b"fine\n"


def test_memory_per_shell(lab_factory):
    if "cgroup" not in limits_mechanism():
        pytest.skip("no control groups here: " + limits_mechanism())
    lab = lab_factory(config_lines=[CMD, "MaxMemoryPerShellMB = 64"])
    r = lab.session().run_cmd(
        "python3 -c \"b = bytearray(300 * 1024 * 1024); print('allocated')\"")
    assert r.status_code != 0
    assert b"allocated" not in r.std_out
    r = lab.session().run_cmd(
        "python3 -c \"b = bytearray(8 * 1024 * 1024); print('small')\"")
    assert r.std_out == b"small\n"


def host_of(p, shell):
    """The winrmd-host behind a shell: the parent of the command's sh."""
    cid = p.run_command(shell, "echo $PPID")
    out, _, _ = p.get_command_output(shell, cid)
    p.cleanup_command(shell, cid)
    return int(out)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def test_shared_process(lab_factory):
    """UseSharedProcess: a user's shells of one configuration share one
    host, which waits WarmPoolTtlSeconds for the next shell once the last
    is gone, then ends; without it, each shell has a host of its own."""
    lab = lab_factory(config_lines=[CMD, "UseSharedProcess = true",
                                    "WarmPoolTtlSeconds = 2"])
    p = lab.protocol()
    s1, s2 = p.open_shell(), p.open_shell()
    pid = host_of(p, s1)
    assert host_of(p, s2) == pid
    p.close_shell(s1)
    p.close_shell(s2)
    time.sleep(0.5)
    assert alive(pid)
    s3 = p.open_shell()
    assert host_of(p, s3) == pid
    p.close_shell(s3)
    assert wait_gone(pid), "the idle shared host did not end"
    s4 = p.open_shell()
    assert host_of(p, s4) != pid
    p.close_shell(s4)
    lab.stop()

    lab.extra_config = []
    lab.start()
    p = lab.protocol()
    s1, s2 = p.open_shell(), p.open_shell()
    assert host_of(p, s1) != host_of(p, s2)
    p.close_shell(s1)
    p.close_shell(s2)


def test_shared_host_dies_with_its_shells(lab_factory):
    """Shells that share a host break together when it dies, and an idle
    shared host ends when the daemon goes away (nothing would reconnect
    to it)."""
    lab = lab_factory(config_lines=[CMD, "UseSharedProcess = true"])
    p = lab.protocol()
    s1, s2 = p.open_shell(), p.open_shell()
    pid = host_of(p, s1)
    os.kill(pid, signal.SIGKILL)
    for s in (s1, s2):
        with pytest.raises(WinRMError) as e:
            p.run_command(s, "echo", ["x"])
        assert fault_fields(e.value)["wsmanfault_code"] == "2150858843" or \
            "broken" in str(e.value).lower() or "2150859" in str(e.value)
    s3 = p.open_shell()
    pid = host_of(p, s3)
    p.close_shell(s3)
    assert alive(pid)
    lab.proc.kill()
    lab.proc.wait()
    lab.proc = None
    assert wait_gone(pid), "an idle shared host outlived the daemon"


def test_shared_host_keeps_disconnected_shells_across_restart(lab_factory):
    """Two disconnected WinRS shells on one shared host outlive a daemon
    restart and are both reconnected to the one host afterwards."""
    from wsman_raw import S, Shell
    lab = lab_factory(config_lines=[CMD, "UseSharedProcess = true"])
    w = Wire(lab)
    a, b = Shell(w), Shell(w)
    pids = []
    for sh in (a, b):
        cid = sh.command("echo $PPID")
        out, _, code, _ = sh.run_to_done(cid)
        pids.append(int(out))
    assert pids[0] == pids[1]
    for sh in (a, b):
        assert sh.call(S + "Disconnect", "<rsp:Disconnect/>").status == 200
    lab.stop()
    assert alive(pids[0]), "the shared host ended with the daemon"
    lab.start()
    w = Wire(lab)
    for sh in (a, b):
        sh.wire = w
        assert sh.call(S + "Reconnect", "").status == 200
        cid = sh.command("echo $PPID")
        out, _, code, _ = sh.run_to_done(cid)
        assert int(out) == pids[0]
    assert a.delete().status == 200
    assert b.delete().status == 200



def test_stop_while_a_host_is_gone_unnoticed(lab_factory):
    """The daemon stops cleanly when a host is gone but its closed
    connection is not read yet: asking that host to shut down fails, and
    the daemon goes on with the others.  Made deterministic by stopping
    the daemon (SIGSTOP) while it gets SIGTERM and the idle shared host
    is killed, so that it finds the stop request before the closed
    connection."""
    lab = lab_factory(config_lines=[CMD, "UseSharedProcess = true",
                                    "WarmPoolTtlSeconds = 60"])
    p = lab.protocol()
    s1, s2 = p.open_shell(), p.open_shell()
    host = host_of(p, s1)
    p.close_shell(s1)
    p.close_shell(s2)
    assert alive(host), "the idle shared host should wait for shells"
    daemon = lab.proc.pid
    os.kill(daemon, signal.SIGSTOP)
    try:
        os.kill(daemon, signal.SIGTERM)
        os.kill(host, signal.SIGKILL)
        assert wait_gone(host)
    finally:
        os.kill(daemon, signal.SIGCONT)
    lab.stop()      # exit status 0 and a clean log, sanitizers included
