"""Operating a running daemon: the metrics listener scraped as Prometheus
would, and winrmctl's status and shell commands over the control
socket."""
import re
import socket
import urllib.request

import pytest
from winrm.exceptions import InvalidCredentialsError


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.fullmatch(r"(\w+)(\{[^}]*\})? (\S+)", line)
        assert m, "not exposition format: %r" % line
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def test_metrics(lab_factory):
    port = free_port()
    lab = lab_factory(args=["-o", "Service.MetricsListen=127.0.0.1:%d"
                            % port])
    p = lab.protocol()
    shell = p.open_shell()
    cid = p.run_command(shell, "echo", ["metrics"])
    assert p.get_command_output(shell, cid)[0] == b"metrics\n"
    s = scrape(port)
    assert s['winrmd_shells{configuration="cmd",state="Connected"}'] == 1
    assert s["winrmd_host_processes"] >= 1
    assert s['winrmd_requests_total{action="Create",status="200"}'] == 1
    assert s['winrmd_requests_total{action="Command",status="200"}'] == 1
    assert s['winrmd_auth_successes_total{scheme="Basic"}'] >= 1
    p.cleanup_command(shell, cid)
    p.close_shell(shell)
    with pytest.raises(InvalidCredentialsError):
        lab.protocol(password="wrong").open_shell()
    s = scrape(port)
    assert not any(k.startswith("winrmd_shells{") and v for k, v in
                   s.items())
    assert s['winrmd_auth_failures_total{scheme="Basic"}'] == 1
    assert s['winrmd_requests_total{action="Delete",status="200"}'] == 1
    # Nothing else is served there, and nothing needs credentials.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/wsman" % port,
                               timeout=10)
    assert e.value.code == 404


def test_winrmctl_status_and_shells(lab):
    p = lab.protocol()
    shell = p.open_shell()
    r = lab.winrmctl("status")
    assert r.returncode == 0, r.stderr
    st = dict(line.split("\t") for line in r.stdout.splitlines())
    assert st["shells_connected"] == "1"
    r = lab.winrmctl("shell", "show", shell)
    assert r.returncode == 0, r.stderr
    fields = dict(line.split("\t", 1) for line in r.stdout.splitlines()
                  if not line.startswith("command\t"))
    assert fields["id"] == shell and fields["state"] == "Connected"
    assert fields["owner"] == lab.user and fields["configuration"] == "cmd"
    assert int(fields["host_pid"]) > 0

    # An administrator disconnects it; its client finds it so, and
    # reconnects (WinRS shells can, unlike on Windows).
    r = lab.winrmctl("shell", "disconnect", shell)
    assert r.returncode == 0, r.stderr
    assert "SHELL_DISCONNECT shell=%s user=%s reason=admin" % (
        shell, lab.user) in lab.log()
    r = lab.winrmctl("shell", "disconnect", shell)
    assert r.returncode == 1 and "Disconnected" in r.stderr
    with pytest.raises(Exception) as e:
        p.run_command(shell, "true")
    assert "2150859204" in str(e.value)

    r = lab.winrmctl("shell", "kill", shell)
    assert r.returncode == 0, r.stderr
    assert "SHELL_EXPIRED shell=%s" % shell in lab.log()
    r = lab.winrmctl("shell", "show", shell)
    assert r.returncode == 1 and "no shell" in r.stderr
    r = lab.winrmctl("shell", "show", "not a shell")
    assert r.returncode == 2


def test_winrmctl_without_daemon(lab_factory):
    lab = lab_factory()
    lab.stop()
    r = lab.winrmctl("status")
    assert r.returncode == 2 and "not running" in r.stderr


def test_audit_events_past_the_retention_are_removed(lab_factory):
    """AuditRetentionDays: at start, winrmd removes the audit events older
    than that many days, says how many in its log, and keeps the rest."""
    import sqlite3
    lab = lab_factory(config_lines=["[Service]", "AuditRetentionDays = 30"])
    lab.protocol().close_shell(lab.protocol().open_shell())
    lab.stop()
    db = sqlite3.connect(str(lab.dir / "state.db"))
    total = db.execute("SELECT count(*) FROM audit").fetchone()[0]
    assert total >= 3
    # Make all but the newest event 31 days old.
    with db:
        db.execute("UPDATE audit SET ts = ts - 31 * 86400000 "
                   "WHERE id < (SELECT max(id) FROM audit)")
    db.close()
    lab.start()
    lab.stop()
    assert "audit: removed %d entries older than 30 days" % (total - 1) \
        in lab.log()
    r = lab.winrmctl("audit", "--max", "100000")
    assert r.returncode == 0
    events = r.stdout.splitlines()
    # The one kept, and what the restart added.
    assert events and int(events[0].split()[0]) == total
