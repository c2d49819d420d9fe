"""Disconnect and Reconnect of WinRS (cmd) shells, with raw envelopes.

MS-WSMV 3.1.4.15-16 define Disconnect and Reconnect on the cmd resource
URI: the client leaves (rsp:Disconnect), the command goes on, its output
is kept, and the same client comes back (rsp:Reconnect with an empty body
for the shell; MS-PSRP 3.1.5.3.18 adds a second Reconnect naming the
command) and Receives what it missed.  The responses are compared with
Windows' recorded DisconnectResponse and ReconnectResponse (the WS-Man
layer is the same for every shell; the recordings are of PSRP shells,
tests/data/windows-traces/test_psrp_disconnect_runspaces.yml).

Connect (a new client attaching by shell id) has no meaning for a cmd
shell here: it carries a PowerShell connectXml, and the protocol notes
record Windows refusing disconnect operations on cmd shells altogether.
winrmd refuses Connect on a cmd shell with a fault, at once.
"""
import base64
import signal
import time

import pytest

import wsman_raw
from wsman_raw import (S, STATE_DONE, Shell, Wire, command_body, fault_of,
                       load_trace, parse)

TEST_TIME_LIMIT = 40
DISCONNECT, RECONNECT, CONNECT = S + "Disconnect", S + "Reconnect", S + "Connect"
LOOP = "for i in $(seq 1 50); do echo $i; sleep 0.1; done"
ERROR_TIMED_OUT = 2150858793
ERROR_WINRS_SHELL_DISCONNECTED = 2150859204
FAULT_WITHIN = 4.0


@pytest.fixture(autouse=True)
def time_limit():
    """Fail (instead of hanging) when a test runs longer than the limit."""
    def expired(signum, frame):
        raise TimeoutError("test exceeded %d s" % TEST_TIME_LIMIT)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def shell(lab):
    """A cmd shell, deleted at the end whatever happened."""
    sh = Shell(Wire(lab))
    yield sh
    try:
        sh.delete()
    except Exception:
        pass


def windows_response(index, action):
    doc = parse(load_trace("test_psrp_disconnect_runspaces.yml")[index]["response"])
    act = doc.text("s:Header/a:Action", "").strip()
    assert act.endswith("/" + action), act
    return doc


def ok(reply, what):
    """A 200 answer, not a fault; Windows' shape of the empty response."""
    if reply.status != 200 or reply.is_fault:
        f = fault_of(reply) if reply.is_fault else {}
        pytest.fail("%s was refused: HTTP %d %s %s" % (
            what, reply.status, f.get("subcode"), f.get("message") or reply.raw[:300]))
    assert reply.doc.text("s:Header/a:RelatesTo") == reply.message_id, what
    return reply


def refused(what, call, *args, **kw):
    """A SOAP fault, at once (not a time-out, not a hang)."""
    t0 = time.monotonic()
    reply = call(*args, **kw)
    took = time.monotonic() - t0
    assert reply.status == 500 and reply.is_fault, \
        "%s: HTTP %d, %r (it must be refused with a fault)" % (what, reply.status, reply.raw[:300])
    f = fault_of(reply)
    assert f["code"] != ERROR_TIMED_OUT, "%s: timed out instead of a refusal" % what
    assert took < FAULT_WITHIN, "%s: the fault took %.1f s" % (what, took)
    return f


def receive_chunk(sh, cid):
    """One Receive: (stdout bytes, Done?)."""
    r = sh.receive(cid)
    if r.status != 200:
        f = fault_of(r)
        assert f["code"] == ERROR_TIMED_OUT, r
        return b"", False
    out = b"".join(base64.b64decode(s.text or "") for s in r.doc.findall(".//rsp:Stream")
                   if s.get("Name") == "stdout")
    st = r.doc.find(".//rsp:CommandState")
    return out, st is not None and st.get("State") == STATE_DONE


def assert_numbers(data, n):
    lines = data.decode().split()
    assert lines == [str(i) for i in range(1, n + 1)], \
        "stdout is not 1..%d once each in order: %d lines, first %s, last %s" % (
            n, len(lines), lines[:5], lines[-5:])


@pytest.mark.parametrize("per_command", [False, True], ids=["shell", "shell+command"])
def test_winrs_disconnect_reconnect(shell, per_command):
    """Command writing 1..50 over 5 s; Receive a little; Disconnect (Windows:
    empty DisconnectResponse); wait 2 s while the command goes on;
    Reconnect the shell (empty ReconnectResponse) and, in the
    ``shell+command`` variant, the command (<rsp:Reconnect CommandId=.../>);
    Receive until Done: every number exactly once, in order, exit code 0."""
    cid = shell.command(LOOP)
    got, done = receive_chunk(shell, cid)
    assert not done
    r = ok(shell.call(DISCONNECT, "<rsp:Disconnect/>"), "Disconnect")
    wsman_raw.assert_same_shape(windows_response(4, "DisconnectResponse"), r.doc,
                                "DisconnectResponse")
    time.sleep(2)
    r = ok(shell.call(RECONNECT, ""), "Reconnect")
    wsman_raw.assert_same_shape(windows_response(5, "ReconnectResponse"), r.doc,
                                "ReconnectResponse")
    if per_command:
        r = ok(shell.call(RECONNECT, '<rsp:Reconnect CommandId="%s"/>' % cid),
               "Reconnect of the command")
        wsman_raw.assert_same_shape(windows_response(5, "ReconnectResponse"), r.doc,
                                    "command-level ReconnectResponse")
    out, err, code, _ = shell.run_to_done(cid, deadline=20)
    assert_numbers(got + out, 50)
    assert err == b"" and code == 0, (err, code)


def test_winrs_disconnect_with_options(shell):
    """Disconnect carrying rsp:IdleTimeOut and rsp:BufferMode (the form
    PowerShell sends) is accepted like the bare one, and Reconnect brings
    the output back."""
    cid = shell.command("echo one; sleep 1; echo two")
    r = ok(shell.call(DISCONNECT, "<rsp:Disconnect><rsp:IdleTimeOut>PT120S</rsp:IdleTimeOut>"
                                  "<rsp:BufferMode>Block</rsp:BufferMode></rsp:Disconnect>"),
           "Disconnect with IdleTimeOut and BufferMode")
    wsman_raw.assert_same_shape(windows_response(4, "DisconnectResponse"), r.doc,
                                "DisconnectResponse")
    time.sleep(1.5)
    ok(shell.call(RECONNECT, ""), "Reconnect")
    out, err, code, _ = shell.run_to_done(cid, deadline=20)
    assert out.split() == [b"one", b"two"] and code == 0, (out, err, code)


def test_winrs_requests_on_disconnected_shell_are_refused(shell):
    """While disconnected, Receive, Send, Signal and Command are refused at
    once with s:Receiver / w:InternalError 2150859204
    (ERROR_WINRS_SHELL_DISCONNECTED), never left waiting; they change
    nothing (after Reconnect the command's output is complete, its stdin
    still open); Delete of the disconnected shell succeeds."""
    cid = shell.command("read line; echo got:$line; " + LOOP)
    ok(shell.call(DISCONNECT, "<rsp:Disconnect/>"), "Disconnect")
    cases = [
        ("Receive", shell.receive, (cid,)),
        ("Send", shell.send, (cid, b"hello\n")),
        ("Signal", shell.signal, (cid, "ctrl_c")),
        ("Command", shell.call, ("Command", command_body("echo never"))),
    ]
    for what, call, args in cases:
        f = refused(what + " on a disconnected shell", call, *args)
        assert (f["code_value"], f["subcode"], f["code"]) == (
            wsman_raw.q("s", "Receiver"), wsman_raw.q("w", "InternalError"),
            ERROR_WINRS_SHELL_DISCONNECTED), "%s: %r" % (what, f)
    ok(shell.call(RECONNECT, ""), "Reconnect")
    r = shell.send(cid, b"after\n", end="true")
    assert r.status == 200, r
    out, _, code, _ = shell.run_to_done(cid, deadline=20)
    lines = out.decode().split()
    assert lines[0] == "got:after", "the refused Send reached the command: %r" % lines[:3]
    assert lines[1:] == [str(i) for i in range(1, 51)], lines
    ok(shell.call(DISCONNECT, "<rsp:Disconnect/>"), "second Disconnect")
    r = shell.delete()
    assert r.status == 200 and not r.is_fault, "Delete of a disconnected shell: %r" % r
    f = fault_of(shell.receive(cid))
    assert f["subcode"] == wsman_raw.q("w", "InvalidSelectors"), f


def test_winrs_connect_is_refused(shell):
    """Connect (a new client attaching by shell id) on a disconnected cmd
    shell is refused with a fault at once, and leaves the shell as it was:
    the client that disconnected still Reconnects and gets all of 1..50."""
    cid = shell.command(LOOP)
    ok(shell.call(DISCONNECT, "<rsp:Disconnect/>"), "Disconnect")
    refused("Connect on a cmd shell", shell.call, CONNECT, "<rsp:Connect/>")
    ok(shell.call(RECONNECT, ""), "Reconnect after the refused Connect")
    out, _, code, _ = shell.run_to_done(cid, deadline=20)
    assert_numbers(out, 50)
    assert code == 0
