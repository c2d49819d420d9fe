"""PSRP shells of winrmd under bad input and failures.

Every test sends one kind of malformed or hostile input (or breaks the
pwsh behind a shell) and checks that winrmd answers it the way a WS-Man
client can handle — a SOAP fault carrying a WSManFault code, never a hang,
an HTTP error without a fault or a dead daemon — and that the daemon and,
where the input did not concern it, the shell go on working.  The harness
(conftest.py) also fails a test whose daemon log has a fatal or internal
error, or a sanitizer report.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.parse
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psrp  # noqa: E402
from psrp import (Fragment, HostInfo, MessageType, PowerShell,  # noqa: E402
                  PSInvocationState, RunspacePool, RunspacePoolState, WSManFault,
                  WSManTransport)
from psrp import messages as m  # noqa: E402
from psrp import wsman as W  # noqa: E402

PWSH = psrp.find_pwsh()
pytestmark = pytest.mark.skipif(PWSH is None, reason="pwsh not found")

TEST_TIME_LIMIT = 60
ERROR_TIMED_OUT = 2150858793
ERROR_INVALID_SELECTORS = 2150858843
PS_PROTOCOL_VERSION_NOT_FOUND = 2152991687      # 0x80540BC7
PS_PROTOCOL_VERSION_MISMATCH = 2152991685       # 0x80540BC5
NIL = uuid.UUID(int=0)
PS_NS = "http://schemas.microsoft.com/powershell"


@pytest.fixture(autouse=True)
def time_limit():
    def expired(signum, frame):
        raise TimeoutError("test exceeded %d s" % TEST_TIME_LIMIT)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def transport(lab, **kw) -> WSManTransport:
    kw.setdefault("operation_timeout", 5)
    return WSManTransport(lab.http_url, lab.user, lab.password, auth="basic", **kw)


def open_pool(lab, **kw) -> RunspacePool:
    return RunspacePool(transport(lab), **kw).open(timeout=30)


def expect_fault(call, *args, **kw) -> WSManFault:
    """Run a request that must be refused with a WS-Man fault (HTTP 500,
    a WSManFault code), not a time-out, a success or a broken connection."""
    try:
        result = call(*args, **kw)
    except WSManFault as f:
        assert f.http_status == 500, f
        assert f.wsman_code is not None and f.code in ("s:Sender", "s:Receiver"), f.raw
        assert f.wsman_code != ERROR_TIMED_OUT, "a time-out instead of an error: %s" % f
        return f
    raise AssertionError("the request succeeded (%r); a WS-Man fault was expected" % (result,))


def assert_daemon_serves(lab) -> None:
    """The daemon is running and a new pool can run a pipeline."""
    assert lab.proc.poll() is None, "winrmd died"
    pool = open_pool(lab)
    try:
        assert PowerShell(pool).add_script("6 * 7").invoke(timeout=30) == [42]
    finally:
        pool.close()


def assert_pool_works(pool: RunspacePool) -> None:
    assert PowerShell(pool).add_script("'still ' + 'here'").invoke(timeout=30) == ["still here"]
    assert pool.get_available_runspaces() == 1


def frag(oid: int, data: bytes, *, fid: int = 0, start: bool = True, end: bool = True,
         length: int | None = None) -> bytes:
    """One fragment; ``length`` overrides the BlobLength field."""
    raw = Fragment(oid, fid, start, end, data).pack()
    if length is not None:
        raw = raw[:17] + length.to_bytes(4, "big") + raw[21:]
    return raw


def message(mtype: int, rpid: uuid.UUID, pid: uuid.UUID, data: str | bytes) -> bytes:
    return psrp.Message(2, mtype, rpid, pid,
                        data.encode("utf-8") if isinstance(data, str) else data).pack()


def create_pipeline_data() -> str:
    """CREATE_PIPELINE data of the script ``1`` without a host."""
    return m.create_pipeline([m.Command("1", is_script=True)],
                             host_info=HostInfo(use_runspace_host=False))


def opening_messages(rpid: uuid.UUID) -> tuple[bytes, bytes]:
    """SESSION_CAPABILITY and INIT_RUNSPACEPOOL as the client sends them."""
    caps = message(MessageType.SESSION_CAPABILITY, rpid, NIL, m.session_capability())
    init = message(MessageType.INIT_RUNSPACEPOOL, rpid, NIL,
                   m.init_runspace_pool(1, 1, host_info=HostInfo()))
    return caps, init


def create_shell(tr: WSManTransport, shell_id: str, creation: str | None,
                 options=(("protocolversion", "2.3", True),)):
    """A Create with a hand-made rsp:Shell; ``creation`` is the creationXml
    element's text (None: no creationXml at all)."""
    body = ('<rsp:Shell ShellId="%s"><rsp:InputStreams>stdin pr</rsp:InputStreams>'
            '<rsp:OutputStreams>stdout</rsp:OutputStreams>%s</rsp:Shell>'
            % (shell_id, "" if creation is None else
               '<creationXml xmlns="%s">%s</creationXml>' % (PS_NS, creation)))
    root = tr.request(W.ACTION_CREATE, body=body, options=list(options) or None)
    tr.shell_id = shell_id
    return root


def shells(lab) -> list[str]:
    tr = transport(lab)
    try:
        return [s.shell_id for s in tr.enumerate_shells()]
    finally:
        tr.close()


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                         timeout=10).stdout.split()
    kids = [int(k) for k in out]
    return kids + [g for k in kids for g in descendants(k)]


def alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Create
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("creation", [
    None,                                               # no creationXml element
    "",                                                 # empty
    "!!not base64!!",
    base64.b64encode(b"not PSRP fragments at all " * 4).decode(),
], ids=["missing", "empty", "not-base64", "garbage"])
def test_create_with_bad_creation_xml(lab, creation):
    tr = transport(lab)
    f = expect_fault(create_shell, tr, str(uuid.uuid4()).upper(), creation)
    assert f.subcode == "w:InvalidParameter" and f.wsman_code == 87, f
    assert shells(lab) == []
    assert_daemon_serves(lab)


@pytest.mark.parametrize("where", ["first", "second"])
def test_create_with_truncated_fragment(lab, where):
    """creationXml cut in the middle of its first or second fragment.  A
    fragment is never split across payloads (MS-PSRP 2.2.4, brief §7.1),
    so the payload is malformed: the Create is refused instead of handing
    pwsh part of a message (the pool would then stay Opening for ever)."""
    tr = transport(lab)
    rpid = uuid.uuid4()
    caps, init = opening_messages(rpid)
    if where == "first":
        payload = frag(1, caps)[:-30]
    else:
        payload = (frag(1, caps) + frag(2, init))[:-30]
    f = expect_fault(create_shell, tr, str(rpid).upper(), base64.b64encode(payload).decode())
    assert f.code == "s:Sender", f
    assert shells(lab) == []
    assert_daemon_serves(lab)


@pytest.mark.parametrize("version,code", [
    (None, PS_PROTOCOL_VERSION_NOT_FOUND),
    ("3.0", PS_PROTOCOL_VERSION_MISMATCH),
], ids=["missing", "major-3"])
def test_create_protocolversion(lab, version, code):
    """The PowerShell plugin's option check (brief §4.3.2): no
    protocolversion option -> 2152991687, major version other than 2 ->
    2152991685 with a PSProtocolVersionError naming the server's version."""
    tr = transport(lab)
    rpid = uuid.uuid4()
    caps, init = opening_messages(rpid)
    payload = base64.b64encode(frag(1, caps) + frag(2, init)).decode()
    options = [] if version is None else [("protocolversion", version, True)]
    f = expect_fault(create_shell, tr, str(rpid).upper(), payload, options)
    assert f.wsman_code == code, f
    if version is not None:
        assert "PSProtocolVersionError" in f.message and 'ServerProtocolVersion="2.' in f.message
    assert shells(lab) == []
    assert_daemon_serves(lab)


def test_create_with_environment_and_options(lab):
    """rsp:Environment next to several options: the plugin reads the
    options while the shell is created (an options array that moved under
    it once made the host read freed memory)."""
    tr = transport(lab)
    rpid = uuid.uuid4()
    caps, init = opening_messages(rpid)
    payload = base64.b64encode(frag(1, caps) + frag(2, init)).decode()
    sid = str(rpid).upper()
    body = ('<rsp:Shell ShellId="%s"><rsp:Environment>'
            '<rsp:Variable Name="A">1</rsp:Variable>'
            '<rsp:Variable Name="B">2</rsp:Variable></rsp:Environment>'
            '<rsp:InputStreams>stdin pr</rsp:InputStreams>'
            '<rsp:OutputStreams>stdout</rsp:OutputStreams>'
            '<creationXml xmlns="%s">%s</creationXml></rsp:Shell>'
            % (sid, PS_NS, payload))
    tr.request(W.ACTION_CREATE, body=body, options=[
        ("protocolversion", "2.3", True), ("skipcacheck", "FALSE", False),
        ("x-extra", "y" * 200, False)])
    assert sid in shells(lab)
    tr.shell_id = sid
    tr.close_pool()
    assert_daemon_serves(lab)


# ---------------------------------------------------------------------------
# Send
# ---------------------------------------------------------------------------

def test_send_with_fragment_length_past_the_end(lab):
    """A Send whose fragment claims more bytes than the Stream holds is
    refused with a fault (nothing of it reaches pwsh, which would wait for
    the missing bytes and then misread the next Send); the pool goes on."""
    pool = open_pool(lab)
    tr = pool.transport
    try:
        data = message(MessageType.GET_AVAILABLE_RUNSPACES, pool.rpid, NIL,
                       m.get_available_runspaces(99))
        bad = frag(pool.fragmenter.next_object_id(), data, length=len(data) + 40)
        expect_fault(tr.send, None, bad)
        assert_pool_works(pool)
    finally:
        pool.close()
    assert_daemon_serves(lab)


@pytest.mark.parametrize("lane", ["pool", "pipeline"])
@pytest.mark.parametrize("mtype", [0x0002F0F0, MessageType.RUNSPACEPOOL_STATE],
                         ids=["unknown", "server-to-client"])
def test_unknown_message_type(lab, lane, mtype):
    """A well-formed message of a type the server does not handle.
    PowerShell's server ignores such messages (ServerRunspacePoolData-
    StructureHandler.ProcessReceivedData and its pipeline counterpart have
    no default case), and so does the Windows plugin, which runs the same
    code: the Send may be answered or refused, but the shell must not
    break.  The pipeline it was sent to still gets its input and ends."""
    pool = open_pool(lab)
    tr = pool.transport
    try:
        ps = PowerShell(pool).add_script("$input | ForEach-Object { $_ + 1 }").expect_input()
        ps.begin_invoke(end_input=False)
        pid = NIL if lane == "pool" else ps.pid
        data = message(mtype, pool.rpid, pid, '<Obj RefId="0"><MS></MS></Obj>')
        try:
            tr.send(None if lane == "pool" else ps.pid,
                    frag(pool.fragmenter.next_object_id(), data))
        except WSManFault as f:
            assert f.http_status == 500 and f.wsman_code not in (None, ERROR_TIMED_OUT), f
        ps.send_input([41], end=True)
        assert ps.end_invoke(30) == [42]
        assert_pool_works(pool)
    finally:
        pool.close()
    assert_daemon_serves(lab)


def test_duplicated_fragments_in_retried_sends(lab):
    """A client that did not get the answer to a Send sends it again (same
    fragments).  The repeated fragments are dropped (brief: psrp-bridge
    §7.6): pwsh would take a repeated fragment as a protocol error and
    exit.  Both Sends are answered; the input arrives once."""
    pool = open_pool(lab)
    tr = pool.transport
    try:
        ps = PowerShell(pool).add_script(
            "$input | ForEach-Object { if ($_ -is [string]) { $_.Length } else { $_ * 10 } }")
        ps.expect_input().begin_invoke(end_input=False)
        # Two whole messages in one payload, sent twice.
        msgs = [psrp.Message(2, MessageType.PIPELINE_INPUT, pool.rpid, ps.pid,
                             m.pipeline_input(v).encode()) for v in (1, 2)]
        payload = b"".join(f.pack() for f in pool.fragmenter.fragment_many(msgs))
        tr.send(ps.pid, payload)
        tr.send(ps.pid, payload)
        # One message in three fragments, each in its own Send; the middle
        # one is sent twice.
        big = psrp.Message(2, MessageType.PIPELINE_INPUT, pool.rpid, ps.pid,
                           m.pipeline_input("x" * 20000).encode())
        parts = [f.pack() for f in pool.fragmenter.fragment(big, 8000)]
        assert len(parts) == 3
        for p in (parts[0], parts[1], parts[1], parts[2]):
            tr.send(ps.pid, p)
        ps.end_input()
        assert ps.end_invoke(30) == [10, 20, 20000]
        assert ps.state == PSInvocationState.COMPLETED
        assert_pool_works(pool)
    finally:
        pool.close()


# ---------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------

def _command(tr: WSManTransport, args: list[str] | None, shell_id: str | None = None):
    cid = str(uuid.uuid4()).upper()
    body = ('<rsp:CommandLine CommandId="%s"><rsp:Command />%s</rsp:CommandLine>'
            % (cid, "".join("<rsp:Arguments>%s</rsp:Arguments>" % a for a in args or [])))
    sel = {"ShellId": shell_id} if shell_id else tr._shell_selectors()
    return tr.request(W.ACTION_COMMAND, body=body, selectors=sel)


def test_command_for_unknown_shell(lab):
    pool = open_pool(lab)
    try:
        create = message(MessageType.CREATE_PIPELINE, pool.rpid, uuid.uuid4(),
                         create_pipeline_data())
        args = base64.b64encode(frag(pool.fragmenter.next_object_id(), create)).decode()
        f = expect_fault(_command, pool.transport, [args], str(uuid.uuid4()).upper())
        assert f.subcode == "w:InvalidSelectors" and f.wsman_code == ERROR_INVALID_SELECTORS, f
        assert_pool_works(pool)
    finally:
        pool.close()


def _bad_arguments(pool: RunspacePool) -> dict[str, list[str] | None]:
    oid = pool.fragmenter.next_object_id
    enc = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    pid = uuid.uuid4()
    inp = message(MessageType.PIPELINE_INPUT, pool.rpid, pid, m.pipeline_input(1))
    create = message(MessageType.CREATE_PIPELINE, pool.rpid, NIL, create_pipeline_data())
    return {
        "none": None,
        "empty": [""],
        "not-base64": ["%%% not base64 %%%"],
        "not-fragments": [enc(b"\x01\x02\x03 not a fragment")],
        "pipeline-input": [enc(frag(oid(), inp))],
        "pool-message": [enc(frag(oid(), message(MessageType.GET_AVAILABLE_RUNSPACES,
                                                 pool.rpid, NIL,
                                                 m.get_available_runspaces(5))))],
        "nil-pid": [enc(frag(oid(), create))],
        "truncated": [enc(frag(oid(), create, length=len(create) + 10))],
    }


@pytest.mark.parametrize("case", ["none", "empty", "not-base64", "not-fragments",
                                  "pipeline-input", "pool-message", "nil-pid", "truncated"])
def test_command_with_bad_arguments(lab, case):
    """Arguments that are not base64, not fragments, or carry no
    CREATE_PIPELINE / GET_COMMAND_METADATA for a pipeline are refused; the
    shell still runs pipelines."""
    pool = open_pool(lab)
    try:
        f = expect_fault(_command, pool.transport, _bad_arguments(pool)[case])
        assert f.code == "s:Sender", f
        assert_pool_works(pool)
    finally:
        pool.close()


# ---------------------------------------------------------------------------
# pwsh dying, or writing to its stdout
# ---------------------------------------------------------------------------

def _receive_raw(tr: WSManTransport, pid: uuid.UUID | None, timeout: float = 3):
    """One Receive; returns the WSManFault or the parsed ReceiveResult."""
    attr = ' CommandId="%s"' % tr._command_id(pid) if pid is not None else ""
    body = ('<rsp:Receive><rsp:DesiredStream%s>stdout</rsp:DesiredStream></rsp:Receive>'
            % attr)
    try:
        root = tr.request(W.ACTION_RECEIVE, body=body, selectors=tr._shell_selectors(),
                          timeout=timeout)
    except WSManFault as f:
        return f
    return tr.parse_receive(root)


@pytest.mark.parametrize("victims", ["child", "tree"])
def test_pwsh_killed_mid_pipeline(lab, victims):
    """``kill -9`` of the pwsh behind a shell while a pipeline runs.
    ``child``: the process winrmd-host started (found with pgrep -P on the
    rsp:ProcessId of the CreateResponse); ``tree``: that process and every
    process below it (a pwsh installed as a .NET tool is a launcher that
    runs the engine as its child).

    The pipeline's Receive gets a fault (not a normal response: the
    pipeline never finished), later requests on the shell fault instead of
    timing out, Delete works, no process of the shell survives it, and
    the daemon serves a new pool."""
    tr = transport(lab)
    pool = RunspacePool(tr).open(timeout=30)
    host_pid = int(tr.shell_info["ProcessId"])
    ps = PowerShell(pool).add_script("'started'; Start-Sleep -Seconds 60; 'never'")
    ps.begin_invoke()
    deadline = time.monotonic() + 20
    while not ps.output and time.monotonic() < deadline:
        ps.poll_invoke(2)
    assert ps.output == ["started"]
    family = descendants(host_pid)
    child = subprocess.run(["pgrep", "-P", str(host_pid)], capture_output=True, text=True,
                           timeout=10).stdout.split()
    assert len(child) == 1, child
    for pid in ([int(child[0])] if victims == "child" else family):
        os.kill(pid, signal.SIGKILL)

    # The pipeline's Receive: time-outs while the server notices, then a
    # fault.  A ReceiveResponse would tell the client the pipeline went on
    # or ended normally.
    deadline = time.monotonic() + 12
    while True:
        got = _receive_raw(tr, ps.pid)
        assert isinstance(got, WSManFault), \
            "the Receive of the killed pipeline was answered normally: %r" % (got,)
        if got.wsman_code != ERROR_TIMED_OUT:
            break
        assert time.monotonic() < deadline, "only time-outs %.0f s after pwsh was killed" % 12
    assert got.http_status == 500 and got.wsman_code is not None

    # Everything else on the shell fails at once.
    for what, call in [
        ("pool Receive", lambda: _receive_raw(tr, None)),
        ("pipeline Receive", lambda: _receive_raw(tr, ps.pid)),
    ]:
        f = call()
        assert isinstance(f, WSManFault) and f.wsman_code != ERROR_TIMED_OUT, (what, f)
    expect_fault(tr.send, None, frag(pool.fragmenter.next_object_id(), message(
        MessageType.GET_AVAILABLE_RUNSPACES, pool.rpid, NIL, m.get_available_runspaces(7))))
    expect_fault(PowerShell(pool).add_script("1").begin_invoke)

    tr.request(W.ACTION_DELETE, selectors=tr._shell_selectors())
    tr.closed = True
    pool.state = RunspacePoolState.CLOSED
    deadline = time.monotonic() + 20
    while any(alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in family if alive(p)], "processes of the deleted shell survive"
    assert str(pool.rpid).upper() not in shells(lab)
    assert_daemon_serves(lab)


JUNK_SCRIPTS = {
    # straight to file descriptor 1, past PowerShell's own stdout handling
    "console-stream": "$o = [Console]::OpenStandardOutput(); "
                      "$b = [Text.Encoding]::UTF8.GetBytes(\"junk line`n\"); "
                      "$o.Write($b, 0, $b.Length); $o.Flush(); 'after'",
    # a child that inherits pwsh's stdout
    "child-process": "Start-Process -NoNewWindow -Wait /bin/echo -ArgumentList 'junk from echo'; "
                     "'after'",
    # lines that look like protocol packets
    "fake-packets": "$o = [Console]::OpenStandardOutput(); "
                    "$b = [Text.Encoding]::UTF8.GetBytes(\"<Data Stream='Default' "
                    "PSGuid='00000000-0000-0000-0000-000000000000'>AAAA</Data>`n"
                    "<DataAck PSGuid='11111111-2222-3333-4444-555555555555' />`n"
                    "<Nonsense PSGuid='x' />`n`n\"); $o.Write($b, 0, $b.Length); $o.Flush(); "
                    "'after'",
}


@pytest.mark.parametrize("kind", sorted(JUNK_SCRIPTS))
def test_pwsh_writes_junk_lines(lab, kind):
    """Lines on pwsh's stdout that are not packets of the stdio protocol are
    skipped: the pipeline that wrote them completes with its output, and
    the shell goes on."""
    pool = open_pool(lab)
    try:
        ps = PowerShell(pool).add_script(JUNK_SCRIPTS[kind])
        assert ps.invoke(timeout=30) == ["after"]
        assert ps.state == PSInvocationState.COMPLETED
        assert_pool_works(pool)
    finally:
        pool.close()


def test_pwsh_junk_without_newline(lab):
    """Junk without a line end ahead of a packet: pwsh writes each packet
    as one whole line, so the packet still starts at its own ``<Data``;
    the bridge must not drop the packet with the junk.  (Only the stdio
    bridge has this channel; Windows' in-process plugin cannot lose
    output this way.)"""
    pool = open_pool(lab)
    try:
        ps = PowerShell(pool).add_script(
            "Start-Process -NoNewWindow -Wait /usr/bin/printf -ArgumentList 'partial'; "
            "Start-Sleep -Milliseconds 200; 'after'; 'second'")
        assert ps.invoke(timeout=30) == ["after", "second"]
        assert_pool_works(pool)
    finally:
        pool.close()


# ---------------------------------------------------------------------------
# A client that goes away
# ---------------------------------------------------------------------------

def _raw_envelope(tr: WSManTransport, action: str, body: str, selectors: dict,
                  timeout_s: int) -> bytes:
    h = ('<a:Action s:mustUnderstand="true">{action}</a:Action>'
         '<a:MessageID>uuid:{mid}</a:MessageID>'
         '<a:ReplyTo><a:Address s:mustUnderstand="true">'
         'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>'
         '<a:To>{to}</a:To>'
         '<w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize>'
         '<w:OperationTimeout>PT{t}S</w:OperationTimeout>'
         '<w:ResourceURI s:mustUnderstand="true">{uri}</w:ResourceURI>'
         '<w:SelectorSet>{sel}</w:SelectorSet>').format(
        action=action, mid=str(uuid.uuid4()).upper(), to=tr.endpoint, t=timeout_s,
        uri=tr.resource_uri,
        sel="".join('<w:Selector Name="%s">%s</w:Selector>' % kv for kv in selectors.items()))
    return ('<s:Envelope xmlns:s="{s}" xmlns:a="{a}" xmlns:w="{w}" xmlns:rsp="{rsp}">'
            '<s:Header>{h}</s:Header><s:Body>{b}</s:Body></s:Envelope>').format(
        h=h, b=body, **W.NS).encode("utf-8")


@pytest.mark.parametrize("close", ["reset", "fin"])
def test_client_vanishes_during_parked_pool_receive(lab, close):
    """A pool Receive waits for data (parked); its client goes away, with a
    TCP reset or an orderly close (a client whose read timed out, like
    pypsrp before it retries).  Pool data produced right afterwards must
    reach the client's next Receive, not the vanished one (brief §4.7: the
    data of a response that did not reach its client is delivered again);
    the daemon and the shell go on."""
    pool = open_pool(lab)
    tr = pool.transport
    try:
        u = urllib.parse.urlsplit(lab.http_url)
        cred = base64.b64encode(("%s:%s" % (lab.user, lab.password)).encode()).decode()
        # Whether the server notices an orderly close before it writes is
        # a race; each round is another chance to lose the data.
        for ci in range(4242, 4242 + (5 if close == "fin" else 1)):
            env = _raw_envelope(tr, W.ACTION_RECEIVE,
                                "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream>"
                                "</rsp:Receive>", tr._shell_selectors(), 30)
            head = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                    "Content-Type: application/soap+xml;charset=UTF-8\r\n"
                    "Authorization: Basic %s\r\nContent-Length: %d\r\n\r\n"
                    % (u.path, u.hostname, u.port, cred, len(env))).encode()
            s = socket.create_connection((u.hostname, u.port), timeout=10)
            s.sendall(head + env)
            time.sleep(1.0)                 # parked by now
            s.settimeout(0.2)
            with pytest.raises(socket.timeout):
                s.recv(1)                   # still waiting: nothing to send
            if close == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            time.sleep(0.2)
            # Pool data made while the vanished Receive is the only one: the
            # answer to GET_AVAILABLE_RUNSPACES, given a second to arrive
            # before this client receives again.
            pool.send_message(MessageType.GET_AVAILABLE_RUNSPACES, m.get_available_runspaces(ci))
            time.sleep(1.0)
            deadline = time.monotonic() + 10
            while not any(x.message_type == MessageType.RUNSPACE_AVAILABILITY and
                          m.parse_message(x).ci == ci for x in pool.received):
                assert time.monotonic() < deadline, \
                    "round %d: the answer made after the client vanished never " \
                    "arrived" % (ci - 4241)
                pool.poll(3)
        assert_pool_works(pool)
    finally:
        pool.close()
    assert_daemon_serves(lab)
