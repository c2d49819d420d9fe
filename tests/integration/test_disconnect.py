"""Disconnected PowerShell sessions: Disconnect, Reconnect, Connect.

A PSRP shell outlives its client: the client disconnects (rsp:Disconnect),
the pipelines go on running on the server, their output is kept for later
(BufferMode Block: the pipeline pauses when the buffer is full; Drop: the
oldest output is thrown away), and a client gets it back, either the same
client object (rsp:Reconnect) or a new one that knows only the shell id
(rsp:Connect, Connect-PSSession / Receive-PSSession).  A disconnected shell
that nobody comes back for expires after its IdleTimeOut.  It also outlives
a restart of the daemon.

Windows is the reference.  What it does comes from three recordings of a
real Windows server (pypsrp against Windows PowerShell 5.1, in
tests/data/windows-traces):

* test_psrp_disconnect_runspaces.yml: Disconnect, Reconnect, Disconnect;
  Enumerate of shells and commands; Connect from another client session;
  Delete.
* test_psrp_disconnected_commands.yml: Create, Command, Disconnect at once
  (Invoke-Command -InDisconnectedSession); Enumerate (State Disconnected,
  the command Running); Connect; the first pool Receive brings
  APPLICATION_PRIVATE_DATA; command-level Connect; Receive until Done;
  Reconnect by the connected client; Delete.
* test_psrp_is_alive_state_disconnected.yml: a shell created with
  IdleTimeOut PT60S that no client polls shows State Disconnected after a
  minute (Get).

Their responses are compared here with winrmd's, element by element
(``wsman_raw.shape``), where a response of the same kind exists.  What no
recording shows (faults for a busy or foreign shell, requests on a
disconnected shell, buffering limits, expiry, restarts) is checked against
MS-WSMV and the protocol notes; each test says which.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
import signal
import sys
import threading
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psrp  # noqa: E402
import wsman_raw  # noqa: E402
from psrp import (MessageType, PowerShell, PSInvocationState,  # noqa: E402
                  RunspacePool, RunspacePoolState, TransportError, WSManFault,
                  WSManTransport)
from psrp import wsman as psrp_wsman  # noqa: E402
from wsman_raw import q  # noqa: E402

PWSH = psrp.find_pwsh()

TEST_TIME_LIMIT = 60          # seconds; a test may ask for more (see limit())
OP_TIMEOUT = 5                # OperationTimeout of the test clients
FAULT_WITHIN = 4.0            # a refused request must be answered this fast
PS_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
DURATION = re.compile(r"P\d+DT\d+H\d+M\d+S$")

# Windows error codes (winerror.h; the names are Windows').
ERROR_WINRS_SHELL_DISCONNECTED = 2150859204
ERROR_WINRS_SHELL_DISCONNECT_NOT_SUPPORTED = 2150859205
ERROR_WSMAN_INVALID_SELECTORS = 2150858843   # PowerShell: TARGETSESSION_DOESNOTEXIST
ERROR_ACCESS_DENIED = 5

TRACE_RUNSPACES = "test_psrp_disconnect_runspaces.yml"
TRACE_COMMANDS = "test_psrp_disconnected_commands.yml"
TRACE_ALIVE = "test_psrp_is_alive_state_disconnected.yml"

# Elements whose text differs by nature beyond wsman_raw.IGNORE_TEXT (the
# connect response's PSRP content is checked message by message).
EXTRA_IGNORE = {q("rsp", "MemoryUsed"), q("rsp", "ChildProcesses"),
                "{http://schemas.microsoft.com/powershell}connectResponseXml"}


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

def limit(seconds):
    """Give one test another time limit than TEST_TIME_LIMIT."""
    def mark(fn):
        fn.time_limit_s = seconds
        return fn
    return mark


@pytest.fixture(autouse=True)
def time_limit(request):
    """Fail (instead of hanging) when a test runs longer than its limit."""
    seconds = getattr(request.function, "time_limit_s", TEST_TIME_LIMIT)

    def expired(signum, frame):
        raise TimeoutError("test exceeded %d s" % seconds)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(autouse=True)
def needs_pwsh(request):
    """The tests that run a lab need pwsh (the ones on recordings do not)."""
    uses_lab = {"lab", "lab_factory"} & set(request.fixturenames)
    if uses_lab:
        pytest.importorskip("winrm")
        if PWSH is None:
            pytest.skip("pwsh not found")


@pytest.fixture
def cleanup(lab_factory):
    """Register shells to delete at the end of a test, whatever happened.

    A disconnected shell outlives its client by design (and, once the
    daemon keeps shells across restarts, possibly the daemon too), so a
    failing test must not leave its host and pwsh behind.  The processes
    named are killed, by pid, if they are still there after the Delete.
    """
    shells: list[tuple] = []

    def register(lab, shell_id, pids=()):
        shells.append((lab, shell_id, list(pids)))

    yield register
    for lab, shell_id, pids in shells:
        if lab.proc is not None and lab.proc.poll() is None:
            try:
                t = transport(lab, operation_timeout=5)
                t.shell_id = shell_id
                t.close_pool(timeout=5)
            except Exception:
                pass
        for pid in pids:
            if wait_gone([pid], 5):
                continue
            if _is_ours(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

def transport(lab, user=None, password=None, **kw) -> WSManTransport:
    kw.setdefault("operation_timeout", OP_TIMEOUT)
    return WSManTransport(lab.http_url, user or lab.user, password or lab.password,
                          auth="basic", **kw)


def open_pool(lab, cleanup=None, pool_kw=None, **kw) -> RunspacePool:
    """An opened pool on a new shell (registered for clean-up)."""
    tr = transport(lab, **kw)
    pool = RunspacePool(tr, **(pool_kw or {})).open(timeout=30)
    if cleanup is not None:
        host = int(tr.shell_info["ProcessId"]) if tr.shell_info else 0
        cleanup(lab, tr.shell_id, [host] + descendants(host) if host else [])
    return pool


def new_client(lab, rpid, **kw) -> RunspacePool:
    """A client that knows nothing but the shell id (= the pool id), as a
    new PowerShell process after Get-PSSession does."""
    return RunspacePool(transport(lab, **kw), rpid=rpid)


def numbers(n, delay_ms=20, progress=None) -> str:
    """A script writing 1..n, one every delay_ms; with ``progress`` it also
    writes the latest number to that file, so the test can watch the
    pipeline run while no client is connected."""
    each = "$_"
    if progress is not None:
        each = "[IO.File]::WriteAllText('%s', \"$_\"); $_" % progress
    if delay_ms:
        each += "; Start-Sleep -Milliseconds %d" % delay_ms
    return "1..%d | ForEach-Object { %s }" % (n, each)


def start(pool, script) -> PowerShell:
    ps = PowerShell(pool).add_script(script)
    ps.begin_invoke()
    return ps


def receive_some(ps, count, timeout=30.0) -> None:
    """Poll the pipeline until it produced at least ``count`` objects."""
    deadline = time.monotonic() + timeout
    while len(ps.output) < count:
        assert not ps.finished, "the pipeline ended early: %s %s" % (
            ps.state, ps.invocation_error)
        assert time.monotonic() < deadline, \
            "only %d objects in %.0f s" % (len(ps.output), timeout)
        ps.poll_invoke(2)


def read_progress(path) -> int:
    try:
        text = open(path).read().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


# Disconnect, Reconnect and Connect fail the test with what the server said
# (today: "The shell does not support disconnect operations").

def disconnect(pool, what="Disconnect", **kw) -> None:
    try:
        pool.disconnect(**kw)
    except WSManFault as f:
        pytest.fail("%s was refused with a fault (Windows answers an empty "
                    "DisconnectResponse): %s" % (what, f))


def reconnect(pool, **kw) -> None:
    try:
        pool.reconnect(**kw)
    except WSManFault as f:
        pytest.fail("Reconnect was refused with a fault (Windows answers an "
                    "empty ReconnectResponse): %s" % f)


def connect(pool, **kw) -> RunspacePool:
    try:
        return pool.connect(**kw)
    except WSManFault as f:
        pytest.fail("Connect from a new client was refused with a fault "
                    "(Windows answers a ConnectResponse): %s" % f)


def connect_pipeline(pool, pid) -> PowerShell:
    try:
        return pool.connect_pipeline(pid)
    except WSManFault as f:
        pytest.fail("the command-level Connect was refused with a fault "
                    "(Windows answers <rsp:ConnectResponse/>): %s" % f)


def expect_fault(what, fn, *args, within=FAULT_WITHIN, **kw) -> WSManFault:
    """Run a request that must be refused: a SOAP fault, answered at once
    (a time-out or a hang is not a refusal)."""
    t0 = time.monotonic()
    try:
        fn(*args, **kw)
    except WSManFault as f:
        took = time.monotonic() - t0
        assert f.subcode_local != "TimedOut", (
            "%s: the server let the request time out after %.1f s instead of "
            "refusing it: %s" % (what, took, f))
        assert took < within, "%s: the fault took %.1f s (a refusal is immediate)" % (
            what, took)
        return f
    except TransportError as e:
        pytest.fail("%s: no SOAP fault but %s after %.1f s"
                    % (what, e, time.monotonic() - t0))
    pytest.fail("%s succeeded; it must be refused with a fault" % what)


def find_shell(tr, shell_id):
    for s in tr.enumerate_shells():
        if (s.shell_id or "").upper() == shell_id.upper():
            return s
    return None


def wait_for(pred, timeout, step=0.25):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

def assert_sequence(got, n, what="output"):
    """got must be exactly 1..n: every number once, in order."""
    want = list(range(1, n + 1))
    if got == want:
        return
    seen: dict = {}
    for v in got:
        seen[v] = seen.get(v, 0) + 1
    missing = [v for v in want if v not in seen]
    dups = sorted(v for v, c in seen.items() if c > 1)
    extra = sorted((v for v in seen if v not in want), key=str)
    order = next((i for i in range(1, len(got)) if got[i - 1] >= got[i]), None) \
        if not extra and all(isinstance(v, int) for v in got) else None
    pytest.fail("%s is not 1..%d exactly once in order: %d values; missing %s; "
                "duplicated %s; unexpected %s; first out of order at index %s"
                % (what, n, len(got), _short(missing), _short(dups), _short(extra), order))


def _short(values, n=12):
    values = list(values)
    return "%s%s" % (values[:n], " ... (%d)" % len(values) if len(values) > n else "")


def assert_completed(ps):
    """Windows ends a pipeline with PIPELINE_STATE Completed on the Receive
    that carries CommandState Done."""
    assert ps.state == PSInvocationState.COMPLETED, (ps.state, ps.invocation_error)
    types = [m.message_type for m in ps.received]
    assert types and types[-1] == MessageType.PIPELINE_STATE, \
        "the last pipeline message is %s" % (ps.received[-1].type_name if ps.received else None)
    assert types.count(MessageType.PIPELINE_STATE) == 1, "PIPELINE_STATE arrived twice"
    assert ps.command_state == "Done", "CommandState %r after PIPELINE_STATE" % ps.command_state


def exchange(tr, action, nth=-1):
    """(request, response) documents of a past request of this transport."""
    found = [(req, resp) for act, req, resp in tr.history if act == action]
    assert found, "no %s in the client's history" % action
    req, resp = found[nth]
    return wsman_raw.parse(req), wsman_raw.parse(resp)


def windows_response(trace, index, action):
    """A recorded Windows response, checked to be the one meant."""
    doc = wsman_raw.parse(wsman_raw.load_trace(trace)[index]["response"])
    act = doc.text("s:Header/a:Action", "").strip()
    assert act.endswith("/" + action), "%s #%d is %s, not %s" % (trace, index, act, action)
    return doc


def shape_lines(doc, elem=None, drop_name=False, ignore=()):
    lines = wsman_raw.shape(doc, elem, ignore_text=EXTRA_IGNORE | set(ignore))
    if drop_name:
        # Windows' recordings have no rsp:Name (pypsrp set none); winrmd
        # shows one when the client set one or invents one (protocol
        # brief 4.3.3).  Only its presence after ShellId is allowed.
        lines = [ln for i, ln in enumerate(lines)
                 if not (ln.strip().startswith("rsp:Name") and i > 0
                         and lines[i - 1].strip().startswith("rsp:ShellId"))]
    return lines


def assert_like_windows(windows, ours, what, win_elem=None, our_elem=None, drop_name=False,
                        ignore=()):
    want = shape_lines(windows, win_elem, ignore=ignore)
    got = shape_lines(ours, our_elem, drop_name, ignore)
    if want != got:
        diff = "\n".join(difflib.unified_diff(want, got, "windows", "winrmd",
                                              lineterm="", n=3))
        pytest.fail("%s differs from Windows':\n%s" % (what, diff))


def assert_relates(req, resp, what):
    mid = req.text("s:Header/a:MessageID")
    rel = resp.text("s:Header/a:RelatesTo")
    assert rel == mid, "%s: RelatesTo %r for MessageID %r" % (what, rel, mid)


def enumerated_item(resp, shell_id):
    """The rsp:Shell item of an EnumerateResponse with this ShellId."""
    for item in resp.findall("s:Body/n:EnumerateResponse/w:Items/rsp:Shell"):
        sid = item.find("rsp:ShellId", wsman_raw.NS)
        if sid is not None and (sid.text or "").upper() == shell_id.upper():
            return item
    return None


def connect_messages(tr):
    """The PSRP fragments and messages of the last ConnectResponse."""
    _, resp = exchange(tr, "Connect")
    el = resp.find("s:Body/rsp:ConnectResponse/{%s}connectResponseXml" % psrp_wsman.NS["pwsh"])
    assert el is not None and (el.text or "").strip(), "ConnectResponse without connectResponseXml"
    frags = psrp.unpack_fragments(base64.b64decode(el.text.strip()))
    msgs = []
    for f in frags:
        assert f.start and f.end, "connectResponseXml holds a partial fragment " \
            "(Windows: two whole single-fragment messages)"
        msgs.append(psrp.Message.unpack(f.data, f.object_id))
    return frags, msgs


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

def _stat(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            text = fh.read()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def descendants(pid) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                children.setdefault(int(st[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def rss_mib(pid) -> float:
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _is_ours(pid) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmd = fh.read()
    except OSError:
        return False
    return b"winrmd-host" in cmd or b"pwsh" in cmd or b"PowerShell" in cmd


def wait_gone(pids, timeout) -> bool:
    return bool(wait_for(lambda: not any(alive(p) for p in pids), timeout, 0.1))


class MemoryWatch(threading.Thread):
    """Samples the resident memory of the daemon and of a shell's host
    (the C side) and of the host's descendants (pwsh) while a test runs."""

    def __init__(self, daemon_pid, host_pid, interval=0.2):
        super().__init__(daemon=True)
        self.daemon_pid, self.host_pid, self.interval = daemon_pid, host_pid, interval
        self.c_base = self._c()
        self.c_peak = self.c_base
        self.pwsh_peak = 0.0
        self._halt = threading.Event()

    def _c(self):
        return rss_mib(self.daemon_pid) + rss_mib(self.host_pid)

    def sample(self):
        self.c_peak = max(self.c_peak, self._c())
        self.pwsh_peak = max(self.pwsh_peak,
                             sum(rss_mib(p) for p in descendants(self.host_pid)))

    def run(self):
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self):
        self._halt.set()
        self.join(5)
        self.sample()


def audit_lines(lab, event, shell_id):
    return [ln for ln in lab.log().splitlines()
            if event in ln and shell_id.upper() in ln.upper()]


def kill_daemon(lab):
    """kill -9 the daemon: no chance to clean anything up."""
    lab.proc.kill()
    lab.proc.wait()
    lab.proc = None
    lab._log.close()


# ===========================================================================
# The test client against the recordings (no daemon)
# ===========================================================================

class Replay:
    """A transport_factory that answers each request with the next recorded
    Windows response and keeps what the client sent."""

    def __init__(self, trace, first):
        self.pairs = wsman_raw.load_trace(trace)
        self.next = first
        self.sent: list[tuple[int, str]] = []

    def __call__(self):
        return self

    def send_message(self, xml):
        i = self.next
        self.next += 1
        self.sent.append((i, xml))
        return self.pairs[i]["response"].encode("utf-8")


def _header_facts(doc):
    """What matters in a request header: Action, ResourceURI, selectors,
    options (name, value, MustComply)."""
    sel = {s.get("Name"): (s.text or "").strip()
           for s in doc.findall("s:Header/w:SelectorSet/w:Selector")}
    opts = [(o.get("Name"), (o.text or "").strip(), o.get("MustComply"))
            for o in doc.findall("s:Header/w:OptionSet/w:Option")]
    return (doc.text("s:Header/a:Action", "").strip(),
            doc.text("s:Header/w:ResourceURI", "").strip(), sel, opts)


def _body_shape(doc):
    body = doc.find("s:Body")
    return wsman_raw.shape(doc, body, ignore_text={"{%s}connectXml" % psrp_wsman.NS["pwsh"]})


def test_client_requests_match_windows_recordings():
    """The test client's Disconnect, Reconnect, Connect (shell and command),
    Enumerate and Receive requests have the form pypsrp sent to Windows
    (same Action, ResourceURI, selectors, options, body), and the client
    understands Windows' answers: ConnectResponse -> SESSION_CAPABILITY +
    RUNSPACEPOOL_INIT_DATA, then APPLICATION_PRIVATE_DATA, then the
    pipeline's buffered output ending in PIPELINE_STATE Completed and Done.
    Replays test_psrp_disconnected_commands.yml from its Disconnect on."""
    rec = wsman_raw.load_trace(TRACE_COMMANDS)
    replay = Replay(TRACE_COMMANDS, 9)
    endpoint = wsman_raw.parse(rec[9]["request"]).text("s:Header/a:To")
    shell_id = "BCEF62AD-380E-4314-B2A4-EB6748019B41"
    command_id = "DB4E8DCF-51CC-423F-A7DF-5D0EA0D6FA08"

    tr = WSManTransport(endpoint, transport_factory=replay, operation_timeout=20)
    tr.shell_id = shell_id
    tr.max_envelope_size = 512000
    tr.disconnect()                                                 # 9
    shells = tr.enumerate_shells()                                  # 10
    assert [s.state for s in shells] == ["Disconnected", "Disconnected"]
    cmds = tr.enumerate_commands(shell_id)                          # 11
    assert [(c.command_id, c.state) for c in cmds] == [(command_id, "Running")]
    replay.next = 13                   # 12 is the other shell's Enumerate
    pool = RunspacePool(tr, rpid=uuid.UUID(shell_id)).connect(timeout=5)   # 13, 14
    assert pool.init_data.min_runspaces == 1 and pool.init_data.max_runspaces == 1
    assert pool.application_private_data["PSVersionTable"]["PSRemotingProtocolVersion"] == "2.3"
    ps = pool.connect_pipeline(uuid.UUID(command_id))               # 15
    assert ps.end_invoke(timeout=5) == ["a", "b"]                   # 16, 17
    assert_completed(ps)
    assert replay.next == 18
    replay.next = 23                   # 18-22: the same for the other shell
    tr.reconnect()                                                  # 23
    assert replay.next == 24

    for i, xml in replay.sent:
        ours, theirs = wsman_raw.parse(xml), wsman_raw.parse(rec[i]["request"])
        a, b = _header_facts(theirs), _header_facts(ours)
        assert b == a, "request #%d: header %r, pypsrp sent %r" % (i, b, a)
        assert _body_shape(ours) == _body_shape(theirs), \
            "request #%d: body differs:\n%s\npypsrp:\n%s" % (
                i, "\n".join(_body_shape(ours)), "\n".join(_body_shape(theirs)))
    # The connectXml payload: SESSION_CAPABILITY + CONNECT_RUNSPACEPOOL <S />,
    # each one whole fragment, as pypsrp sent it.
    ours = wsman_raw.parse(dict(replay.sent)[13])
    theirs = wsman_raw.parse(rec[13]["request"])

    def payload(doc):
        el = doc.find(".//{%s}connectXml" % psrp_wsman.NS["pwsh"])
        frags = psrp.unpack_fragments(base64.b64decode(el.text))
        return [(f.start, f.end, psrp.Message.unpack(f.data)) for f in frags]
    mine, pypsrps = payload(ours), payload(theirs)
    assert [(s, e, m.destination, m.message_type, m.pid, m.text) for s, e, m in mine] == \
        [(s, e, m.destination, m.message_type, m.pid, m.text) for s, e, m in pypsrps]
    # The RPID is the pool id in PowerShell's byte order (Guid.ToByteArray);
    # pypsrp wrote the same GUID bytes in network order, which Windows
    # accepted and echoed.
    assert [m.rpid for _, _, m in mine] == [uuid.UUID(shell_id)] * 2
    assert [m.rpid.bytes_le for _, _, m in mine] == [m.rpid.bytes for _, _, m in pypsrps]


# ===========================================================================
# 1. Disconnect; Enumerate while disconnected
# ===========================================================================

def test_disconnect_keeps_pipeline_running_and_enumerate_shows_it(lab, cleanup, tmp_path):
    """Disconnect with rsp:IdleTimeOut and rsp:BufferMode.  Windows answers
    an empty DisconnectResponse (all recorded Disconnects), the pipeline
    goes on running, and an Enumerate of shells (Get-PSSession's query,
    from any client session of the owner) lists the shell with State
    Disconnected, the IdleTimeOut and BufferMode the Disconnect asked for,
    and the other Create fields in Windows' order; an Enumerate of the
    shell's commands lists the running pipeline with CommandState Running.
    The name the client gave the shell in Create (rsp:Shell/@Name, as
    Ruby's client sends it) is shown as rsp:Name."""
    progress = tmp_path / "progress.txt"
    pool = open_pool(lab, cleanup, shell_name="nightly-job", shell_name_form="attribute")
    tr = pool.transport
    created = tr.shell_info
    assert created.get("Name") == "nightly-job", \
        "the CreateResponse does not show the Name the client set: %r" % created.fields
    ps = start(pool, numbers(600, 20, progress))
    receive_some(ps, 3)

    disconnect(pool, idle_timeout=300, buffer_mode="Drop")
    req, resp = exchange(tr, "Disconnect")
    assert_relates(req, resp, "DisconnectResponse")
    assert_like_windows(windows_response(TRACE_RUNSPACES, 4, "DisconnectResponse"), resp,
                        "the DisconnectResponse")

    # The pipeline keeps running with nobody connected.
    before = read_progress(progress)
    assert wait_for(lambda: read_progress(progress) >= before + 20, 10), \
        "the pipeline stopped when the client disconnected (progress %d -> %d)" % (
            before, read_progress(progress))

    other = transport(lab)                   # another client session, same user
    shell = find_shell(other, tr.shell_id)
    assert shell is not None, "Enumerate does not list the disconnected shell"
    f = shell.fields
    assert f.get("State") == "Disconnected", f
    assert f.get("Name") == "nightly-job", f
    assert f.get("ResourceUri") == PS_URI, f
    assert f.get("Owner") == lab.user, f
    assert f.get("ClientIP") == "127.0.0.1", f
    assert f.get("ProcessId") == created["ProcessId"] and alive(int(f["ProcessId"])), f
    assert f.get("IdleTimeOut") == "PT300.000S", \
        "IdleTimeOut %r: the Disconnect asked for PT300S" % f.get("IdleTimeOut")
    assert f.get("MaxIdleTimeOut") == created["MaxIdleTimeOut"], f
    assert f.get("BufferMode") == "Drop", \
        "BufferMode %r: the Disconnect asked for Drop" % f.get("BufferMode")
    assert DURATION.match(f.get("ShellRunTime", "")), f
    assert DURATION.match(f.get("ShellInactivity", "")), f
    # Windows' field order (the recorded Enumerate items), rsp:Name after ShellId.
    win = windows_response(TRACE_RUNSPACES, 11, "EnumerateResponse")
    order = [c.tag.rsplit("}", 1)[1]
             for c in win.find("s:Body/n:EnumerateResponse/w:Items/rsp:Shell")]
    order.insert(1, "Name")
    assert list(f) == order, "the Enumerate item's fields %s; Windows: %s" % (list(f), order)

    cmds = other.enumerate_commands(tr.shell_id)
    assert [(c.command_id, c.state) for c in cmds] == [(str(ps.pid).upper(), "Running")], \
        "Enumerate of the shell's commands: %r (Windows: the running pipeline, " \
        "CommandState Running)" % cmds
    _, resp = exchange(other, "Enumerate")
    assert_like_windows(windows_response(TRACE_COMMANDS, 11, "EnumerateResponse"), resp,
                        "the EnumerateResponse of the commands")


# ===========================================================================
# 2. Reconnect by the same client
# ===========================================================================

@pytest.mark.parametrize("per_command", [False, True], ids=["shell", "shell+command"])
def test_reconnect_resumes_output_exactly_once(lab, cleanup, per_command):
    """Disconnect in the middle of a pipeline writing 1..200, wait, then
    Reconnect with the same client objects.  Windows answers an empty
    ReconnectResponse (recorded) and the Receives resume: every number
    arrives once, in order, whether produced before, during or after the
    disconnection; the pipeline ends with PIPELINE_STATE Completed and
    CommandState Done, and the pool runs new pipelines afterwards.
    MS-PSRP 3.1.5.3.18 also has the client reconnect each command with a
    second Reconnect naming it (``shell+command``); pypsrp does not
    (``shell``); both must work."""
    pool = open_pool(lab, cleanup)
    ps = start(pool, numbers(200, 20))
    receive_some(ps, 10)
    disconnect(pool)
    time.sleep(2)
    reconnect(pool)
    req, resp = exchange(pool.transport, "Reconnect")
    assert_relates(req, resp, "ReconnectResponse")
    assert_like_windows(windows_response(TRACE_RUNSPACES, 5, "ReconnectResponse"), resp,
                        "the ReconnectResponse")
    if per_command:
        try:
            pool.transport.reconnect(ps.pid)
        except WSManFault as f:
            pytest.fail("Reconnect with the CommandId was refused: %s" % f)
        _, resp = exchange(pool.transport, "Reconnect")
        assert_like_windows(windows_response(TRACE_RUNSPACES, 5, "ReconnectResponse"), resp,
                            "the command-level ReconnectResponse")
    out = ps.end_invoke(timeout=30)
    assert_sequence(out, 200)
    assert_completed(ps)
    ps2 = PowerShell(pool).add_script("6 * 7")
    assert ps2.invoke(timeout=20) == [42]
    pool.close()


def test_disconnect_answers_a_waiting_receive(lab, cleanup):
    """A Receive waiting for output when the client disconnects is answered
    at once (MS-WSMV 3.1.4.15: the pending operations complete before the
    shell is marked disconnected), not left hanging until its
    OperationTimeout; whatever it carried counts, and after Reconnect the
    rest arrives: 1..50 exactly once."""
    pool = open_pool(lab, cleanup)
    pool.transport.operation_timeout = 15
    ps = start(pool, "Start-Sleep -Seconds 6; " + numbers(50, 10))
    done = threading.Event()
    err: list = []
    t_answer = []

    def waiting():
        try:
            ps.poll_invoke(15)
        except Exception as e:  # reported below
            err.append(e)
        t_answer.append(time.monotonic())
        done.set()
    th = threading.Thread(target=waiting, daemon=True)
    th.start()
    time.sleep(1.0)
    t_disc = time.monotonic()
    disconnect(pool)
    assert done.wait(10), "the waiting Receive is still unanswered 10 s after Disconnect"
    assert t_answer[0] - t_disc < 3, \
        "the waiting Receive was answered %.1f s after the Disconnect" % (t_answer[0] - t_disc)
    assert not err or (isinstance(err[0], WSManFault)), err
    reconnect(pool)
    out = ps.end_invoke(timeout=30)
    assert_sequence(out, 50)
    assert_completed(ps)
    pool.close()


# ===========================================================================
# 3. Connect from a new client
# ===========================================================================

def test_connect_from_new_client_gets_buffered_output(lab, cleanup):
    """A new client (a new RunspacePool object with the old pool's id, a new
    WS-Man client session) attaches to a disconnected shell.  Windows
    (recorded): the ConnectResponse carries rsp:InputStreams, OutputStreams
    and connectResponseXml = SESSION_CAPABILITY (RPID = the pool's id) then
    RUNSPACEPOOL_INIT_DATA (the pool's Min/MaxRunspaces), each a whole
    fragment; the first pool Receive brings APPLICATION_PRIVATE_DATA; a
    command-level Connect answers <rsp:ConnectResponse/>; the Receives then
    deliver what the pipeline wrote while nobody was connected and after,
    ending with PIPELINE_STATE Completed and Done.  Together with what the
    first client received, every number arrives exactly once, in order."""
    first = open_pool(lab, cleanup, pool_kw={"max_runspaces": 2})
    ps = start(first, numbers(200, 20))
    receive_some(ps, 10)
    got_first = list(ps.output)
    disconnect(first)
    first.transport.close()
    time.sleep(1)

    second = new_client(lab, first.rpid)
    assert second.transport.session_id != first.transport.session_id
    connect(second, wait_private_data=False)
    req, resp = exchange(second.transport, "Connect")
    assert_relates(req, resp, "ConnectResponse")
    assert_like_windows(windows_response(TRACE_RUNSPACES, 14, "ConnectResponse"), resp,
                        "the ConnectResponse")
    assert resp.text("s:Body/rsp:ConnectResponse/rsp:InputStreams") == "stdin pr"
    assert resp.text("s:Body/rsp:ConnectResponse/rsp:OutputStreams") == "stdout"
    frags, msgs = connect_messages(second.transport)
    assert [m.message_type for m in msgs] == [MessageType.SESSION_CAPABILITY,
                                              MessageType.RUNSPACEPOOL_INIT_DATA], \
        "connectResponseXml holds %s" % [m.type_name for m in msgs]
    for m in msgs:
        assert m.destination == psrp.Destination.CLIENT, m.type_name
        assert m.rpid == first.rpid, "%s RPID %s (Windows: the pool's id)" % (m.type_name, m.rpid)
        assert m.pid == psrp.NIL_UUID and m.has_bom, m.type_name
    assert second.server_capability.protocol_version == "2.3"
    assert (second.init_data.min_runspaces, second.init_data.max_runspaces) == (1, 2), \
        "RUNSPACEPOOL_INIT_DATA %r; the pool has 1..2 runspaces" % (second.init_data,)

    msgs = second.poll(5)
    assert msgs and msgs[0].message_type == MessageType.APPLICATION_PRIVATE_DATA, \
        "the first pool Receive after Connect brought %s (Windows: APPLICATION_PRIVATE_DATA)" \
        % [m.type_name for m in msgs]
    table = second.application_private_data["PSVersionTable"]
    assert table["PSRemotingProtocolVersion"] == "2.3"
    assert second.state == RunspacePoolState.OPENED

    ps2 = connect_pipeline(second, ps.pid)
    _, resp = exchange(second.transport, "Connect")
    assert_like_windows(windows_response(TRACE_COMMANDS, 15, "ConnectResponse"), resp,
                        "the command-level ConnectResponse")
    rest = ps2.end_invoke(timeout=30)
    assert_sequence(got_first + rest, 200, "first client's output + second client's output")
    assert_completed(ps2)
    ps3 = PowerShell(second).add_script("6 * 7")
    assert ps3.invoke(timeout=20) == [42]
    second.close()


# ===========================================================================
# 4. Invoke-Command -InDisconnectedSession (recorded as test_psrp_disconnected_commands)
# ===========================================================================

def test_in_disconnected_session_like_windows(lab, cleanup):
    """The -InDisconnectedSession pattern, as recorded from Windows: Create,
    Command, Disconnect at once (no Receive on the command); Enumerate of
    shells and commands; Connect from a new client; pool Receive
    (APPLICATION_PRIVATE_DATA); command Connect; Receives until Done;
    Reconnect by the now connected client (Windows: an empty
    ReconnectResponse, MS-WSMV 3.1.4.16 "ignore"); Delete.  Every response
    has the shape of Windows' response at the same step, and the output
    is complete."""
    pool = open_pool(lab, cleanup)
    ps = start(pool, numbers(50, 10) + "; Start-Sleep -Seconds 2")
    disconnect(pool)
    _, resp = exchange(pool.transport, "Disconnect")
    assert_like_windows(windows_response(TRACE_COMMANDS, 4, "DisconnectResponse"), resp,
                        "the DisconnectResponse")
    pool.transport.close()

    other = RunspacePool(transport(lab), rpid=pool.rpid)
    tr = other.transport
    shells = tr.enumerate_shells()
    _, resp = exchange(tr, "Enumerate")
    item = enumerated_item(resp, str(pool.rpid))
    assert item is not None, "Enumerate does not list the shell"
    win = windows_response(TRACE_COMMANDS, 10, "EnumerateResponse")
    assert_like_windows(win, resp, "the Enumerate item of the disconnected shell",
                        win.find("s:Body/n:EnumerateResponse/w:Items/rsp:Shell"), item,
                        drop_name=True)
    assert [s.state for s in shells if s.shell_id.upper() == str(pool.rpid).upper()] == \
        ["Disconnected"]
    cmds = tr.enumerate_commands(str(pool.rpid).upper())
    _, resp = exchange(tr, "Enumerate")
    assert_like_windows(windows_response(TRACE_COMMANDS, 11, "EnumerateResponse"), resp,
                        "the EnumerateResponse of the commands")
    assert [c.command_id for c in cmds] == [str(ps.pid).upper()]

    connect(other, wait_private_data=False)
    _, resp = exchange(tr, "Connect")
    assert_like_windows(windows_response(TRACE_COMMANDS, 13, "ConnectResponse"), resp,
                        "the ConnectResponse")
    msgs = other.poll(5)
    assert [m.message_type for m in msgs][:1] == [MessageType.APPLICATION_PRIVATE_DATA], \
        "the first pool Receive after Connect brought %s" % [m.type_name for m in msgs]
    _, resp = exchange(tr, "Receive")
    assert_like_windows(windows_response(TRACE_COMMANDS, 14, "ReceiveResponse"), resp,
                        "the pool ReceiveResponse after Connect")

    ps2 = connect_pipeline(other, ps.pid)
    _, resp = exchange(tr, "Connect")
    assert_like_windows(windows_response(TRACE_COMMANDS, 15, "ConnectResponse"), resp,
                        "the command-level ConnectResponse")
    out = ps2.end_invoke(timeout=30)
    assert_sequence(out, 50)
    assert_completed(ps2)
    receives = [wsman_raw.parse(r) for a, _, r in tr.history if a == "Receive"]
    final = [d for d in receives if d.find(".//rsp:CommandState") is not None]
    assert len(final) == 1, "%d Receive responses carry a CommandState" % len(final)
    assert_like_windows(windows_response(TRACE_COMMANDS, 17, "ReceiveResponse"), final[0],
                        "the last ReceiveResponse (Done)")

    try:
        tr.reconnect()
    except WSManFault as f:
        pytest.fail("Reconnect by the client that is connected was refused "
                    "(Windows: an empty ReconnectResponse): %s" % f)
    _, resp = exchange(tr, "Reconnect")
    assert_like_windows(windows_response(TRACE_COMMANDS, 23, "ReconnectResponse"), resp,
                        "the ReconnectResponse")
    tr.close_pool()
    _, resp = exchange(tr, "Delete")
    assert_like_windows(windows_response(TRACE_COMMANDS, 24, "DeleteResponse"), resp,
                        "the DeleteResponse")


# ===========================================================================
# 5. Availability: one client at a time
# ===========================================================================

def test_connect_to_a_connected_shell_is_refused(lab, cleanup):
    """While a client is attached, Enumerate shows the shell as Connected
    (PowerShell reports it Busy) and another client's Connect is refused:
    MS-WSMV 3.1.4.17, s:Receiver / w:InternalError.  The refusal must not
    use 2150858843 (PowerShell reads it as "the session does not exist"
    and drops its own session object) nor 2150859205 (disconnect not
    supported).  The attached client is not disturbed.  After it
    disconnects the shell is available and the other client's Connect
    succeeds; the first client's Reconnect is then refused (the shell is
    connected to another client, MS-WSMV 3.1.4.16)."""
    first = open_pool(lab, cleanup)
    ps = start(first, numbers(100, 20))
    receive_some(ps, 3)

    second = new_client(lab, first.rpid)
    shell = find_shell(second.transport, str(first.rpid))
    assert shell is not None and shell.state == "Connected", shell
    f = expect_fault("Connect to a shell another client is attached to",
                     second.connect, wait_private_data=False)
    assert (f.code, f.subcode_local) == ("s:Receiver", "InternalError"), \
        "Connect to a busy shell: %s (MS-WSMV: s:Receiver/w:InternalError)" % f
    assert f.wsman_code != ERROR_WSMAN_INVALID_SELECTORS, \
        "Connect to a busy shell answered code %d, ERROR_WSMAN_TARGETSESSION_" \
        "DOESNOTEXIST to PowerShell (it reports 'the session does not exist'): a " \
        "busy shell needs a code of its own" % f.wsman_code
    assert f.wsman_code != ERROR_WINRS_SHELL_DISCONNECT_NOT_SUPPORTED, \
        "Connect to a busy shell answered 'disconnect not supported': %s" % f

    # The attached client goes on as if nothing happened.
    out = ps.end_invoke(timeout=30)
    assert_sequence(out, 100)
    assert PowerShell(first).add_script("6 * 7").invoke(timeout=20) == [42]

    disconnect(first)
    third = new_client(lab, first.rpid)
    shell = find_shell(third.transport, str(first.rpid))
    assert shell is not None and shell.state == "Disconnected", shell
    connect(third)
    assert PowerShell(third).add_script("6 * 7").invoke(timeout=20) == [42]
    f = expect_fault("Reconnect by the client that disconnected, now that another "
                     "client is attached", first.transport.reconnect)
    assert (f.code, f.subcode_local) == ("s:Receiver", "InternalError"), \
        "Reconnect while another client is attached: %s (MS-WSMV 3.1.4.16: " \
        "s:Receiver/w:InternalError)" % f
    assert f.wsman_code != ERROR_WSMAN_INVALID_SELECTORS, \
        "Reconnect while another client is attached answered code %d " \
        "(TARGETSESSION_DOESNOTEXIST to PowerShell)" % f.wsman_code
    third.close()


# ===========================================================================
# 6. Requests on a disconnected shell
# ===========================================================================

def test_requests_on_disconnected_shell_are_refused(lab, cleanup):
    """While disconnected a shell takes only Disconnect, Reconnect, Connect,
    Delete (and Get/Enumerate).  Command, Send, Receive (pool and
    pipeline) and Signal are refused at once with s:Receiver /
    w:InternalError 2150859204 (ERROR_WINRS_SHELL_DISCONNECTED), never
    left waiting; they change nothing (the output is all there after
    Reconnect).  A Delete of the disconnected shell succeeds and ends its
    processes."""
    pool = open_pool(lab, cleanup)
    tr = pool.transport
    host = int(tr.shell_info["ProcessId"])
    procs = [host] + descendants(host)
    ps = start(pool, numbers(60, 20))
    receive_some(ps, 3)
    got = list(ps.output)
    disconnect(pool)

    probe = PowerShell(pool).add_script("'never'")
    mtype, data = probe._create_data()
    create = pool._payloads([pool._message(mtype, data, probe.pid)])[0]
    avail = pool._payloads([pool._message(MessageType.GET_AVAILABLE_RUNSPACES,
                                          psrp.messages.get_available_runspaces(99))])[0]
    sel = tr._shell_selectors()

    def receive(cid):
        attr = ' CommandId="%s"' % cid if cid else ""
        tr.request(psrp_wsman.ACTION_RECEIVE, selectors=sel, timeout=OP_TIMEOUT,
                   body='<rsp:Receive><rsp:DesiredStream%s>stdout</rsp:DesiredStream>'
                        '</rsp:Receive>' % attr,
                   options=[("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "True")])

    cases = [
        ("Command", tr.create_pipeline, (probe.pid, create)),
        ("Send to the pool", tr.send, (None, avail)),
        ("Receive on the pool", receive, (None,)),
        ("Receive on the pipeline", receive, (str(ps.pid).upper(),)),
        ("Signal to the pipeline", tr.signal, (ps.pid, psrp_wsman.SignalCode.PS_CTRL_C)),
    ]
    for what, fn, args in cases:
        f = expect_fault(what + " on a disconnected shell", fn, *args)
        assert (f.code, f.subcode_local, f.wsman_code) == \
            ("s:Receiver", "InternalError", ERROR_WINRS_SHELL_DISCONNECTED), \
            "%s: %s" % (what, f)
    shell = find_shell(transport(lab), tr.shell_id)
    assert shell is not None and shell.state == "Disconnected", shell
    try:
        got_shell = tr.get_shell()
    except WSManFault as f:
        pytest.fail("Get of a disconnected shell was refused: %s" % f)
    assert got_shell.state == "Disconnected"

    reconnect(pool)
    out = ps.end_invoke(timeout=30)          # the earlier output included
    assert out[:len(got)] == got
    assert_sequence(out, 60)
    assert_completed(ps)
    assert str(probe.pid).upper() not in [c.command_id for c in tr.enumerate_commands()], \
        "the refused Command created a command"

    start(pool, "Start-Sleep -Seconds 60")
    disconnect(pool)
    try:
        tr.close_pool(timeout=10)
    except WSManFault as f:
        pytest.fail("Delete of a disconnected shell was refused: %s" % f)
    assert find_shell(transport(lab), tr.shell_id) is None, "the deleted shell is still listed"
    assert wait_gone(procs + descendants(host), 15), "the deleted shell's processes live on"


# ===========================================================================
# 7. Idle timeouts
# ===========================================================================

LOW_MIN_IDLE = ["-o", "Service.MinIdleTimeoutms=1000"]


def idle_lab(lab_factory):
    """A lab whose shells may ask for an IdleTimeOut of a few seconds
    (Windows' floor is 60 s; the tests cannot wait that long)."""
    try:
        return lab_factory(args=LOW_MIN_IDLE)
    except AssertionError as e:
        if "MinIdleTimeoutms" in str(e):
            pytest.fail("the daemon does not know Service/MinIdleTimeoutms, needed to "
                        "test idle timeouts in a few seconds:\n%s" % str(e)[-600:])
        raise


def seconds_of(duration):
    m = re.match(r"PT(\d+(?:\.\d+)?)S$", duration or "")
    assert m, "not a PTnS duration: %r" % duration
    return float(m.group(1))


@limit(40)
def test_disconnected_shell_expires_after_idle_timeout(lab_factory, cleanup):
    """Disconnect with rsp:IdleTimeOut PT5S.  Enumerate shows
    IdleTimeOut PT5.000S (Windows writes durations with milliseconds).
    With nobody coming back the shell is removed when the time is up
    (Windows: "the session expires"): Enumerate no longer lists it, a
    Connect is refused as for an unknown shell (w:InvalidSelectors
    2150858843), its running pipeline and processes end, and the daemon
    logs SHELL_EXPIRED for it."""
    lab = idle_lab(lab_factory)
    pool = open_pool(lab, cleanup)
    tr = pool.transport
    host = int(tr.shell_info["ProcessId"])
    procs = [host] + descendants(host)
    start(pool, "Start-Sleep -Seconds 300")
    t0 = time.monotonic()
    disconnect(pool, idle_timeout=5)
    other = transport(lab)
    shell = find_shell(other, tr.shell_id)
    assert shell is not None and shell.state == "Disconnected", shell
    idle = seconds_of(shell.get("IdleTimeOut"))
    assert shell.get("IdleTimeOut") == "PT5.000S", \
        "IdleTimeOut %r; the Disconnect asked for PT5S (MinIdleTimeoutms is 1000 here)" \
        % shell.get("IdleTimeOut")
    time.sleep(max(0.0, t0 + idle / 2 - time.monotonic()))
    assert find_shell(other, tr.shell_id) is not None, \
        "the shell was gone after %.1f s of its %.0f s IdleTimeOut" % (
            time.monotonic() - t0, idle)
    left = idle + 10 - (time.monotonic() - t0)
    assert wait_for(lambda: find_shell(other, tr.shell_id) is None, left, 0.5), \
        "the shell is still listed %.0f s after a %.0f s IdleTimeOut" % (
            time.monotonic() - t0, idle)
    gone_after = time.monotonic() - t0
    assert gone_after >= idle - 0.5, "expired after %.1f s of %.0f" % (gone_after, idle)
    late = new_client(lab, pool.rpid)
    f = expect_fault("Connect to an expired shell", late.connect, wait_private_data=False)
    assert (f.subcode_local, f.wsman_code) == ("InvalidSelectors", ERROR_WSMAN_INVALID_SELECTORS), f
    assert wait_gone(procs, 10), "the expired shell's processes live on: %s" % [
        p for p in procs if alive(p)]
    assert audit_lines(lab, "SHELL_EXPIRED", tr.shell_id), \
        "no SHELL_EXPIRED line for %s in the daemon log" % tr.shell_id


@limit(40)
def test_idle_connected_pool_becomes_disconnected(lab_factory, cleanup):
    """A shell whose client stops polling is disconnected by the server
    after its IdleTimeOut, so another client can pick it up.  Windows
    (recorded: Create with IdleTimeOut PT60S, no Receive for a minute):
    Get then shows State Disconnected, with MemoryUsed and ChildProcesses
    after ShellInactivity.  Here the Create asks for PT6S; the same client
    can Reconnect and the pool works."""
    lab = idle_lab(lab_factory)
    pool = open_pool(lab, cleanup, idle_timeout=6)
    tr = pool.transport
    assert tr.shell_info.get("IdleTimeOut") == "PT6.000S", tr.shell_info.fields
    other = transport(lab)
    t0 = time.monotonic()
    shell = wait_for(lambda: (lambda s: s if s is not None and s.state == "Disconnected"
                              else None)(find_shell(other, tr.shell_id)), 15, 0.5)
    assert shell is not None, "after %.0f s without a request the shell is %r" % (
        time.monotonic() - t0, find_shell(other, tr.shell_id))
    assert time.monotonic() - t0 >= 3, "disconnected before its IdleTimeOut"
    got = tr.get_shell()
    assert got.state == "Disconnected"
    _, resp = exchange(tr, "Get")
    # (the IdleTimeOut text differs: PT60S there, PT6S here)
    assert_like_windows(windows_response(TRACE_ALIVE, 4, "GetResponse"), resp,
                        "the GetResponse of a shell the server disconnected", drop_name=True,
                        ignore={q("rsp", "IdleTimeOut")})
    pool.state = RunspacePoolState.DISCONNECTED
    reconnect(pool)
    assert PowerShell(pool).add_script("6 * 7").invoke(timeout=20) == [42]
    pool.close()


# ===========================================================================
# 8. Daemon restarts
# ===========================================================================

@limit(60)
@pytest.mark.parametrize("how", ["kill-9", "sigterm"])
def test_disconnected_shell_survives_daemon_restart(lab, cleanup, how, tmp_path):
    """A disconnected shell outlives a restart of the daemon, whether it was
    killed (kill -9) or stopped normally (SIGTERM): its host and pwsh keep
    running (the pipeline keeps writing), the restarted daemon lists it
    (State Disconnected, same ProcessId, the running command) and a new
    client Connects and receives every number exactly once.  (Windows
    loses its sessions when the WinRM service restarts; winrmd keeps
    them on purpose.)"""
    progress = tmp_path / "progress.txt"
    pool = open_pool(lab, cleanup)
    tr = pool.transport
    host = int(tr.shell_info["ProcessId"])
    ps = start(pool, numbers(300, 20, progress))
    receive_some(ps, 10)
    got = list(ps.output)
    disconnect(pool)
    tr.close()

    if how == "kill-9":
        kill_daemon(lab)
    else:
        lab.stop()
    assert alive(host), "the shell's host ended with the daemon"
    before = read_progress(progress)
    lab.start()
    assert wait_for(lambda: read_progress(progress) > before, 5), \
        "the pipeline is not running across the restart"

    other = transport(lab)
    shell = find_shell(other, tr.shell_id)
    assert shell is not None, "after the restart Enumerate does not list the shell"
    assert shell.state == "Disconnected", shell
    assert shell.get("ProcessId") == str(host), \
        "ProcessId %r, was %d" % (shell.get("ProcessId"), host)
    assert [c.command_id for c in other.enumerate_commands(tr.shell_id)] == \
        [str(ps.pid).upper()]
    assert not audit_lines(lab, "SHELL_EXPIRED", tr.shell_id), \
        "the restarted daemon expired the shell"

    second = new_client(lab, pool.rpid)
    connect(second)
    ps2 = connect_pipeline(second, ps.pid)
    rest = ps2.end_invoke(timeout=30)
    assert_sequence(got + rest, 300, "output before the restart + after")
    assert_completed(ps2)
    assert PowerShell(second).add_script("6 * 7").invoke(timeout=20) == [42]
    second.close()


# ===========================================================================
# 9. Buffer modes
# ===========================================================================

BUFFER_KB = 8192                      # the lab's OutputBufferSizekb
ITEM_CHARS = 32000                    # one output object: "N xxx...x"
ITEMS = 3200                          # 3200 x 32000 = 100 MB
C_GROWTH_MIB = 48                     # daemon + host: 8 MiB buffer + slack
PWSH_RSS_MIB = 300                    # pwsh: ~150 MiB when streaming normally


def producer(progress):
    return ("$f = '%s'; 1..%d | ForEach-Object { if ($_ %% 20 -eq 0) { "
            "[IO.File]::WriteAllText($f, \"$_\") }; \"$_ \" + [string]::new('x', %d) }; "
            "[IO.File]::WriteAllText($f, 'done')" % (progress, ITEMS, ITEM_CHARS))


def item_number(s):
    head, _, tail = s.partition(" ")
    assert len(tail) == ITEM_CHARS and head.isdigit(), "a damaged item: %r..." % s[:40]
    return int(head)


def progress_value(path):
    try:
        return open(path).read().strip()
    except OSError:
        return ""


@limit(90)
@pytest.mark.parametrize("mode", ["Block", "Drop"])
def test_buffer_mode_while_disconnected(lab_factory, cleanup, tmp_path, mode):
    """A pipeline writing 100 MB (3200 strings of 32000 characters, each
    numbered) while its client is disconnected, with an 8 MiB
    OutputBufferSizekb.

    Block (Windows' default; .NET: "the pipeline stays blocked until the
    session is reconnected"): the pipeline stops producing once the buffer
    is full; after Reconnect everything arrives, nothing lost, in order.

    Drop (.NET: "execution continues, surplus output is dropped oldest
    first"): the pipeline runs to its end without waiting; after Reconnect
    the client gets the newest output: a gap-free run k..3200 with k > 1
    (only the oldest lost), then PIPELINE_STATE Completed and Done.

    Either way the memory stays bounded: the daemon and the shell's host
    grow by less than 48 MiB, pwsh stays under 300 MiB."""
    # In a sanitizer build, AddressSanitizer holds up to 256 MiB of freed
    # memory per process in its quarantine, which would count here as
    # growth: keep its quarantine small so that the bound measures us.
    asan = os.environ.get("ASAN_OPTIONS", "")
    lab = lab_factory(args=["-o", "SessionConfiguration Microsoft.PowerShell"
                            ".OutputBufferSizekb=%d" % BUFFER_KB],
                      env={"ASAN_OPTIONS": asan + ":quarantine_size_mb=4"})
    progress = tmp_path / "progress.txt"
    pool = open_pool(lab, cleanup)
    tr = pool.transport
    host = int(tr.shell_info["ProcessId"])
    watch = MemoryWatch(lab.proc.pid, host)
    watch.start()
    try:
        ps = start(pool, producer(progress))
        disconnect(pool, buffer_mode=mode)
        if mode == "Block":
            # Wait until the producer stalls: no progress for 3 s.
            last, since = progress_value(progress), time.monotonic()
            deadline = time.monotonic() + 40
            while time.monotonic() - since < 3 and time.monotonic() < deadline:
                time.sleep(0.25)
                now = progress_value(progress)
                if now != last:
                    last, since = now, time.monotonic()
            assert last != "done", \
                "Block: the pipeline wrote all %d items (100 MB) while disconnected " \
                "instead of pausing when the buffer was full" % ITEMS
            produced = int(last or 0)
            assert time.monotonic() - since >= 3, \
                "Block: the pipeline never paused (now at %s of %d)" % (last, ITEMS)
            bound = 4 * BUFFER_KB * 1024 // ITEM_CHARS + 200
            assert produced <= bound, \
                "Block: %d items (%d MiB) were produced before the pipeline paused; " \
                "the buffer holds %d KiB" % (produced, produced * ITEM_CHARS >> 20, BUFFER_KB)
        else:
            assert wait_for(lambda: progress_value(progress) == "done", 45, 0.25), \
                "Drop: the pipeline did not run to its end while disconnected " \
                "(progress %s of %d)" % (progress_value(progress), ITEMS)
        watch.sample()
        reconnect(pool)
        nums: list[int] = []
        deadline = time.monotonic() + 45
        while True:
            finished = ps.poll_invoke(5)
            nums.extend(item_number(s) for s in ps.output)
            ps.output.clear()
            # keep the state messages only (100 MB of output otherwise)
            ps.received[:] = [m for m in ps.received
                              if m.message_type != MessageType.PIPELINE_OUTPUT]
            if finished:
                break
            assert time.monotonic() < deadline, "the output did not drain in 45 s"
    finally:
        watch.stop()
    assert_completed(ps)
    if mode == "Block":
        assert_sequence(nums, ITEMS, "Block: the output")
    else:
        assert nums, "Drop: nothing at all was kept"
        assert nums[-1] == ITEMS and nums == list(range(nums[0], ITEMS + 1)), \
            "Drop: the output kept is not the newest run ...%d without gaps: %d items, " \
            "first %s, last %s" % (ITEMS, len(nums), nums[:3], nums[-3:])
        assert nums[0] > 1, "Drop: nothing was dropped (100 MB through an 8 MiB buffer?)"
    assert watch.c_peak - watch.c_base < C_GROWTH_MIB, \
        "%s: the daemon and host grew by %.0f MiB (%.0f -> %.0f)" % (
            mode, watch.c_peak - watch.c_base, watch.c_base, watch.c_peak)
    assert watch.pwsh_peak < PWSH_RSS_MIB, "%s: pwsh reached %.0f MiB" % (mode, watch.pwsh_peak)
    pool.close()


# ===========================================================================
# 11. Ownership
# ===========================================================================

OTHER_USER, OTHER_PASSWORD = "other", "0ther-Passw0rd"


def test_other_user_can_neither_see_nor_connect(lab, cleanup):
    """A disconnected shell belongs to the user who created it (Windows:
    only the creator's credentials may connect; Enumerate lists the
    caller's shells).  Another user does not see it in Enumerate, and
    that user's Connect is refused with s:Sender / w:AccessDenied, code 5
    (the fault table of the protocol brief); Reconnect and Delete by that
    user are refused too and change nothing: the owner then Connects and
    gets all the output."""
    r = lab.winrmctl("user", "add", OTHER_USER, "--password-stdin",
                     input=OTHER_PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    pool = open_pool(lab, cleanup)
    ps = start(pool, numbers(60, 20))
    receive_some(ps, 3)
    got = list(ps.output)
    disconnect(pool)

    intruder = new_client(lab, pool.rpid, user=OTHER_USER, password=OTHER_PASSWORD)
    listed = [s.shell_id for s in intruder.transport.enumerate_shells()]
    assert str(pool.rpid).upper() not in [s.upper() for s in listed], \
        "another user's Enumerate lists the shell"
    f = expect_fault("Connect by another user", intruder.connect, wait_private_data=False)
    assert (f.code, f.subcode_local, f.wsman_code) == \
        ("s:Sender", "AccessDenied", ERROR_ACCESS_DENIED), \
        "Connect by another user: %s %s %s; expected s:Sender/w:AccessDenied, code 5" % (
            f.code, f.subcode, f.wsman_code)
    expect_fault("Reconnect by another user", intruder.transport.reconnect)
    expect_fault("Delete by another user", intruder.transport.close_pool)

    owner = new_client(lab, pool.rpid)
    shell = find_shell(owner.transport, str(pool.rpid))
    assert shell is not None and shell.state == "Disconnected", shell
    connect(owner)
    rest = connect_pipeline(owner, ps.pid).end_invoke(timeout=30)
    assert_sequence(got + rest, 60)
    owner.close()
