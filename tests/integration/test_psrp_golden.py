"""PSRP shells of winrmd compared with recorded Windows exchanges.

Each test performs, with the test PSRP client (tests/integration/psrp) over
WS-Man, the client actions of one recording in tests/data/windows-traces
(a pypsrp session against a real Windows host) and compares what winrmd
answered with what Windows answered:

(a) the WS-Man shape of every response: element and attribute names by
    namespace URI, attribute values, child order, the Action URI, the
    CommandState URI and the rsp:Shell field list of the CreateResponse.
    Values that differ by nature (ids, times, host names, addresses) are
    reduced to their kind (``<guid>``, ``<duration>``, ...), so a value of
    the wrong kind still shows.  The response compared with is the Windows
    response of the same role: Receive responses are told apart by what
    they carry (pool stream; pipeline stream with the final PIPELINE_STATE;
    pipeline stream ending in a host call that waits for an answer; any
    other pipeline stream), never by the CommandState winrmd chose.

(b) the PSRP messages the server sent, decoded from the rsp:Stream
    payloads (fragments -> messages -> types), per lane (the pool, and each
    pipeline in the order the Commands were issued), and the rules Windows
    follows for them in every recording: one whole fragment per rsp:Stream,
    CommandState Done on exactly the response that carries the end of the
    terminal PIPELINE_STATE, Pending on exactly the responses that end with
    a host call waiting for an answer, Running only after the client
    answered such a call (see ``_check_state`` for where this comes from),
    no CommandState otherwise, message headers (destination, RPID, PID,
    BOM) as Windows writes them.  These rules are checked on the Windows
    recordings too, so a rule that Windows itself does not follow cannot
    creep in.

What is not compared, and why:

* Which Receive a message arrives in.  A server answers a Receive as soon
  as it holds data (protocol brief §4.7); how much accumulates before that
  is timing.  Windows itself sent SESSION_CAPABILITY and
  APPLICATION_PRIVATE_DATA in one response in most recordings and in two in
  test_psrp_disconnect_runspaces.  The order of the messages on each lane is
  compared instead, and the Done/Pending rules per response.
* The sequence of client requests: that is the client's choice (the test
  client terminates every finished pipeline with a Signal, pypsrp's older
  recordings do not).  Each response is compared with Windows' response to
  the same action.

Windows PowerShell 5.1 against pwsh 7 (each difference is applied by name
in the scenario that needs it, see ``WINDOWS_ONLY`` and the scenarios):

* Windows PowerShell's first pipeline in a new runspace reports module
  analysis as a PROGRESS_RECORD with the Activity "Preparing modules for
  first use." (and, when the pipeline has a host, as a WriteProgress host
  call carrying the same record).  pwsh 7 does not.  Those messages are
  removed from the Windows side by their content.
* GET_COMMAND_METADATA answers with a count object and one object per
  matching command; which commands exist depends on the installation
  (Windows 10 has WSMan cmdlets and other functions than pwsh on Linux), so
  the runs of PIPELINE_OUTPUT are compared as "one or more", and the count
  object is checked against the number of objects that follow it.
* Recorded scripts that need Windows (``$env:USERPROFILE``) or a session
  key (SecureString answers: ReadLineAsSecureString, PromptForCredential,
  which pypsrp prepared with a PUBLIC_KEY exchange the test client does not
  implement) are adapted; the adaptation is stated in the scenario and the
  Windows messages of the removed calls are removed from the Windows side.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
import signal
import struct
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psrp  # noqa: E402
from psrp import (Defragmenter, Host, MessageType, PowerShell,  # noqa: E402
                  PSInvocationState, RunspacePool, WSManTransport)

TRACES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                      "windows-traces")
PWSH = psrp.find_pwsh()

TEST_TIME_LIMIT = 60

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "e": "http://schemas.xmlsoap.org/ws/2004/08/eventing",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
PREFIX_OF = {uri: prefix for prefix, uri in NS.items()}
STATE_URI = NS["rsp"] + "/CommandState/"
NIL = bytes(16)
BOM = b"\xef\xbb\xbf"
VOID_CALL_ID = -100        # ServerDispatchTable.VoidCallId: no answer awaited
MODULE_ANALYSIS = "Preparing modules for first use."
# Server messages whose RPID Windows leaves all-zero (the recordings:
# SESSION_CAPABILITY everywhere, ENCRYPTED_SESSION_KEY in
# test_psrp_pshost_ui_mocked_methods); the others carry the client's RPID.
NIL_RPID_TYPES = (MessageType.SESSION_CAPABILITY, MessageType.ENCRYPTED_SESSION_KEY)


@pytest.fixture(autouse=True)
def needs_pwsh(request):
    """The tests that run a lab need pwsh; the ones on recordings do not."""
    if PWSH is None and "lab" in request.fixturenames:
        pytest.skip("pwsh not found")


@pytest.fixture(autouse=True)
def time_limit():
    """Fail instead of hanging when a test runs too long."""
    def expired(signum, frame):
        raise TimeoutError("test exceeded %d s" % TEST_TIME_LIMIT)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def q(prefix: str, local: str) -> str:
    return "{%s}%s" % (NS[prefix], local)


# ---------------------------------------------------------------------------
# XML with the namespace prefixes in scope (for QName values like s:Sender)
# ---------------------------------------------------------------------------

class Doc:
    def __init__(self, text: str):
        parser = ET.XMLPullParser(events=("start-ns", "start", "end"))
        parser.feed(text.encode("utf-8") if isinstance(text, str) else text)
        parser.close()
        scopes = [{"xml": NS["xml"]}]
        pending: dict = {}
        self.nsmap: dict = {}
        self.root = None
        for event, item in parser.read_events():
            if event == "start-ns":
                pending[item[0]] = item[1]
            elif event == "start":
                scope = dict(scopes[-1])
                scope.update(pending)
                pending = {}
                scopes.append(scope)
                self.nsmap[item] = scope
                if self.root is None:
                    self.root = item
            else:
                scopes.pop()

    def find(self, path: str):
        return self.root.find(path, NS)

    def findall(self, path: str):
        return self.root.findall(path, NS)

    def resolve(self, elem, qname: str) -> str:
        prefix, _, local = qname.strip().rpartition(":")
        uri = self.nsmap.get(elem, {}).get(prefix)
        return "{%s}%s" % (uri if uri is not None else "?" + prefix, local)


def canon(clark: str) -> str:
    if clark.startswith("{"):
        uri, local = clark[1:].split("}", 1)
        return "%s:%s" % (PREFIX_OF.get(uri, "{%s}" % uri), local)
    return clark


# ---------------------------------------------------------------------------
# (a) shapes
# ---------------------------------------------------------------------------

# Elements whose text differs by nature; shown as the kind of value.
VARIABLE_TEXT = {
    q("a", "MessageID"), q("a", "RelatesTo"), q("a", "Address"), q("w", "Selector"),
    q("rsp", "ShellId"), q("rsp", "CommandId"), q("rsp", "Owner"), q("rsp", "ClientIP"),
    q("rsp", "ProcessId"), q("rsp", "ShellRunTime"), q("rsp", "ShellInactivity"),
    q("rsp", "Stream"),
}
VARIABLE_ATTR = {"CommandId", "Machine"}
DROPPED = {q("p", "ActivityId")}        # optional Windows header (brief §3.3)
QNAME_TEXT = {q("s", "Value")}

_KINDS = [
    ("<uuid:guid>", re.compile(r"uuid:[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}$")),
    ("<guid>", re.compile(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}$")),
    ("<int>", re.compile(r"\d+$")),
    ("<duration>", re.compile(r"P\d+DT\d+H\d+M\d+S$")),
    ("<ip>", re.compile(r"\d{1,3}(\.\d{1,3}){3}$")),
    ("<url>", re.compile(r"https?://[^\s/]+/wsman$")),
    ("<base64>", re.compile(r"[A-Za-z0-9+/]+={0,2}$")),
]


def value_kind(text: str) -> str:
    for name, rx in _KINDS:
        if rx.match(text):
            return name
    return "<text>"


def shape(doc: Doc, elem=None, depth: int = 0, out: list | None = None) -> list[str]:
    """One line per element: canonical name, sorted attributes, text.
    Consecutive identical rsp:Stream lines are folded into one with ``(+)``
    (the number of streams in a response is timing, see the module doc)."""
    if out is None:
        out = []
        elem = doc.root
    attrs = []
    for k in sorted(elem.attrib, key=canon):
        v = elem.attrib[k]
        attrs.append("@%s=%s" % (canon(k), value_kind(v) if k in VARIABLE_ATTR else v))
    raw = elem.text or ""
    text = ""
    if raw.strip():
        if elem.tag in QNAME_TEXT:
            text = '= "%s"' % canon(doc.resolve(elem, raw))
        elif elem.tag == q("rsp", "Owner"):
            text = "= <user>"       # Windows: DOMAIN\\user or user
        elif elem.tag in VARIABLE_TEXT:
            text = "= %s" % value_kind(raw.strip())
        else:
            text = '= "%s"' % raw
    line = "  " * depth + " ".join([canon(elem.tag)] + attrs + ([text] if text else []))
    if out and elem.tag == q("rsp", "Stream") and out[-1] in (line, line + " (+)"):
        out[-1] = line + " (+)"
        return out
    out.append(line)
    for child in elem:
        if isinstance(child.tag, str) and child.tag not in DROPPED:
            shape(doc, child, depth + 1, out)
    return out


def fold_streams(lines: list[str]) -> list[str]:
    """A single data stream and several of them have the same shape."""
    return [ln[:-4] if ln.endswith(" (+)") else ln for ln in lines]


# ---------------------------------------------------------------------------
# (b) PSRP decoding of exchanges
# ---------------------------------------------------------------------------

@dataclass
class Frag:
    object_id: int
    fragment_id: int
    start: bool
    end: bool
    blob: bytes


def split_fragments(payload: bytes) -> tuple[list[Frag], bytes]:
    """Whole fragments of a payload and the bytes left over (which must be
    none: a fragment is never split across payloads)."""
    out, pos = [], 0
    while len(payload) - pos >= 21:
        oid, fid, flags, n = struct.unpack_from(">QQBI", payload, pos)
        if len(payload) - pos - 21 < n:
            break
        out.append(Frag(oid, fid, bool(flags & 1), bool(flags & 2),
                        payload[pos + 21:pos + 21 + n]))
        pos += 21 + n
    return out, payload[pos:]


@dataclass
class Msg:
    type: int
    destination: int
    rpid: bytes
    pid: bytes
    data: bytes
    message: psrp.Message

    @property
    def name(self) -> str:
        try:
            return MessageType(self.type).name
        except ValueError:
            return "0x%08X" % self.type

    def parsed(self):
        return psrp.parse_message(self.message)

    @property
    def blocking_call(self) -> bool:
        """A host call the server waits on (not a void method)."""
        if self.type not in (MessageType.PIPELINE_HOST_CALL,
                             MessageType.RUNSPACEPOOL_HOST_CALL):
            return False
        return self.parsed().ci != VOID_CALL_ID

    @property
    def label(self) -> str:
        """The message as compared between Windows and winrmd."""
        if self.type in (MessageType.PIPELINE_HOST_CALL, MessageType.RUNSPACEPOOL_HOST_CALL):
            return "%s:%s" % (self.name, self.parsed().method_name)
        m = re.search(rb'<I32 N="(?:PipelineState|RunspaceState)">(\d+)</I32>', self.data)
        if self.type in (MessageType.PIPELINE_STATE, MessageType.RUNSPACEPOOL_STATE) and m:
            return "%s(%s)" % (self.name, m.group(1).decode())
        return self.name


@dataclass
class Reply:
    """One Receive and what it brought."""
    lane: str
    command_id: str | None
    streams: list[tuple[dict, list[Frag], bytes]]   # attributes, fragments, leftover
    messages: list[Msg]                               # completed in this response
    last_message: Msg | None                          # whose end fragment came last
    state: str | None
    exit_code: str | None
    carries_final_state: bool
    size: int
    doc: Doc


@dataclass
class Exchange:
    action: str
    request: Doc
    response: Doc | None
    text: str
    fault: bool
    reply: "Reply | None" = None


@dataclass
class Analysis:
    exchanges: list[Exchange]
    replies: list[Reply] = field(default_factory=list)
    lanes: dict[str, list[Msg]] = field(default_factory=dict)
    rpid: bytes | None = None
    pids: dict[str, bytes] = field(default_factory=dict)
    # Lanes whose host calls the client has answered so far.
    answered: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _action(doc: Doc) -> str:
    el = doc.find("s:Header/a:Action")
    return (el.text or "").strip().rsplit("/", 1)[-1] if el is not None else ""


def exchanges_from_trace(name: str) -> list[Exchange]:
    with open(os.path.join(TRACES, name), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)["messages"]
    out = []
    for m in data:
        req = Doc(m["request"])
        resp = Doc(m["response"]) if m.get("response") else None
        fault = resp is not None and resp.find("s:Body/s:Fault") is not None
        out.append(Exchange(_action(req), req, resp, m.get("response") or "", fault))
    return out


def exchanges_from_history(*transports: WSManTransport) -> list[Exchange]:
    out = []
    for tr in transports:
        for _action_name, req_text, resp_text in tr.history:
            req = Doc(req_text)
            resp = Doc(resp_text) if resp_text else None
            fault = resp is not None and resp.find("s:Body/s:Fault") is not None
            out.append(Exchange(_action(req), req, resp, resp_text, fault))
    return out


def _payload_messages(text: str | None) -> list[psrp.Message]:
    """The whole (single-fragment) messages of a client payload."""
    frags, _ = split_fragments(base64.b64decode((text or "").strip()))
    return [psrp.Message.unpack(f.blob, f.object_id) for f in frags
            if f.start and f.end and len(f.blob) >= 40]


def _first_message_header(frags: list[Frag]):
    for f in frags:
        if f.start and len(f.blob) >= 40:
            return struct.unpack_from("<II16s16s", f.blob, 0)
    return None


def analyse(exchanges: list[Exchange]) -> Analysis:
    """Decode every exchange of one session; record the server's messages
    per lane and every deviation from the rules Windows follows."""
    a = Analysis(exchanges)
    lane_of: dict[str, str] = {}
    defrag: dict[str, Defragmenter] = {}
    last_oid: dict[str, int] = {}
    done_lanes: set[str] = set()
    pending_frags: dict[str, dict[int, int]] = {}   # lane -> object id -> type
    n_cmd = 0
    for ex in exchanges:
        if ex.action == "Create" and not ex.fault:
            el = ex.request.find(".//pwsh:creationXml")
            frags, _ = split_fragments(base64.b64decode((el.text or "").strip()))
            hdr = _first_message_header(frags)
            if hdr is not None:
                a.rpid = hdr[2]
        elif ex.action == "Command" and not ex.fault:
            n_cmd += 1
            lane = "pipeline%d" % n_cmd
            cid = ex.response.find("s:Body/rsp:CommandResponse/rsp:CommandId")
            lane_of[(cid.text or "").strip().upper()] = lane
            arg = ex.request.find(".//rsp:Arguments")
            frags, _ = split_fragments(base64.b64decode((arg.text or "").strip()))
            hdr = _first_message_header(frags)
            if hdr is not None:
                a.pids[lane] = hdr[3]
            defrag[lane] = Defragmenter()
        elif ex.action == "Send" and not ex.fault:
            for st in ex.request.findall(".//rsp:Stream"):
                for m in _payload_messages(st.text):
                    if m.message_type == MessageType.PIPELINE_HOST_RESPONSE:
                        # routed by the PID in the header (pypsrp's pr Sends
                        # carry no CommandId)
                        a.answered.update(lane for lane, pid in a.pids.items()
                                          if pid == m.pid.bytes_le)
        elif ex.action == "Receive" and not ex.fault:
            _receive(a, ex, lane_of, defrag, last_oid, done_lanes, pending_frags)
    return a


def _receive(a: Analysis, ex: Exchange, lane_of, defrag, last_oid, done_lanes,
             pending_frags) -> None:
    ds = ex.request.find(".//rsp:DesiredStream")
    cid = ds.get("CommandId")
    lane = lane_of.get(cid.upper(), "unknown") if cid else "pool"
    where = "Receive %d (%s)" % (len(a.replies) + 1, lane)
    body = ex.response.find("s:Body/rsp:ReceiveResponse")
    if body is None:
        a.problems.append("%s: no rsp:ReceiveResponse" % where)
        return
    d = defrag.setdefault(lane, Defragmenter())
    types = pending_frags.setdefault(lane, {})
    streams, messages = [], []
    last_msg = None
    final_state = False
    last_frag_type = None
    if lane in done_lanes:
        a.problems.append("%s: a Receive answered after the response with Done" % where)
    for st in body.findall("rsp:Stream", NS):
        frags, rest = split_fragments(base64.b64decode((st.text or "").strip()))
        streams.append((dict(st.attrib), frags, rest))
        if st.get("Name") != "stdout":
            a.problems.append("%s: stream Name=%r" % (where, st.get("Name")))
        if lane == "pool" and st.get("CommandId") is not None:
            a.problems.append("%s: pool stream with a CommandId" % where)
        if lane != "pool" and (st.get("CommandId") or "").upper() != cid.upper():
            a.problems.append("%s: stream CommandId %r, requested %r"
                              % (where, st.get("CommandId"), cid))
        if len(frags) != 1 or rest:
            a.problems.append("%s: a stream holds %d whole fragments and %d stray "
                              "bytes (Windows: exactly one fragment per stream)"
                              % (where, len(frags), len(rest)))
        for f in frags:
            if f.object_id <= last_oid.get(lane, 0) and f.start:
                a.problems.append("%s: ObjectId %d does not increase" % (where, f.object_id))
            last_oid[lane] = max(last_oid.get(lane, 0), f.object_id)
            if f.start and len(f.blob) >= 8:
                types[f.object_id] = struct.unpack_from("<I", f.blob, 4)[0]
            last_frag_type = types.get(f.object_id)
            try:
                m = d.add(psrp.Fragment(f.object_id, f.fragment_id, f.start, f.end, f.blob))
            except psrp.FragmentError as e:
                a.problems.append("%s: %s" % (where, e))
                continue
            if f.end:
                types.pop(f.object_id, None)
                if last_frag_type == MessageType.PIPELINE_STATE:
                    final_state = True
            if m is None:
                last_msg = None
                continue
            msg = Msg(m.message_type, m.destination, m.rpid.bytes_le, m.pid.bytes_le,
                      m.data, m)
            messages.append(msg)
            last_msg = msg
            _check_header(a, where, lane, msg)
    cs = body.find("rsp:CommandState", NS)
    state = exit_code = None
    if cs is not None:
        state = (cs.get("State") or "")
        if state.startswith(STATE_URI):
            state = state[len(STATE_URI):]
        ec = cs.find("rsp:ExitCode", NS)
        exit_code = ec.text if ec is not None else None
    reply = Reply(lane, cid, streams, messages, last_msg, state, exit_code, final_state,
                  len(ex.text.encode("utf-8")), ex.response)
    a.replies.append(reply)
    ex.reply = reply
    a.lanes.setdefault(lane, []).extend(messages)
    _check_state(a, where, reply)
    if final_state:
        done_lanes.add(lane)


def _check_header(a: Analysis, where: str, lane: str, msg: Msg) -> None:
    if msg.destination != 1:
        a.problems.append("%s: %s destination %d" % (where, msg.name, msg.destination))
    want_rpid = NIL if msg.type in NIL_RPID_TYPES else a.rpid
    if msg.rpid != want_rpid:
        a.problems.append("%s: %s RPID %s, expected %s" % (where, msg.name, msg.rpid.hex(),
                                                          want_rpid.hex()))
    want_pid = NIL if lane == "pool" else a.pids.get(lane)
    if msg.pid != want_pid:
        a.problems.append("%s: %s PID %s, expected %s" % (where, msg.name, msg.pid.hex(),
                                                         (want_pid or b"").hex()))
    if not msg.data.startswith(BOM):
        a.problems.append("%s: %s data has no UTF-8 BOM" % (where, msg.name))


def _check_state(a: Analysis, where: str, r: Reply) -> None:
    """CommandState as Windows sets it (brief §4.7, §7.4; every PSRP
    ReceiveResponse of the recordings), from what the Windows plugin
    reports to WinRM (PowerShell's WSManPluginServerTransportManager):

    * Done with the final PIPELINE_STATE;
    * Pending with a host call the pipeline waits on (ServerMethodExecutor.
      ExecuteMethod; ExecuteVoidMethod, used for Write* and the other calls
      without a result, does not report it);
    * Running once the client's answer to a host call arrived
      (ServerPowerShellDataStructureHandler -> ReportExecutionStatusAsRunning);
      the recordings never show it because each of their answers was
      followed by another waiting call or by the end of the pipeline;
    * nothing before any of these: a pipeline that never met a host call
      has no CommandState until Done."""
    if r.lane == "pool":
        if r.state is not None:
            a.problems.append("%s: pool response with CommandState %s" % (where, r.state))
        return
    if r.carries_final_state:
        if r.state != "Done" or r.exit_code != "0":
            a.problems.append("%s: carries the final PIPELINE_STATE but CommandState is "
                              "%s/ExitCode %s (Windows: Done, ExitCode 0)"
                              % (where, r.state, r.exit_code))
        if r.last_message is None or r.last_message.type != MessageType.PIPELINE_STATE:
            a.problems.append("%s: PIPELINE_STATE is not the last message" % where)
        return
    waits = r.last_message is not None and r.last_message.blocking_call
    if waits and (r.state != "Pending" or r.exit_code is not None):
        a.problems.append("%s: ends with the host call %s that awaits an answer but "
                          "CommandState is %s (Windows: Pending)"
                          % (where, r.last_message.label, r.state))
    allowed = (None, "Running") if r.lane in a.answered else (None,)
    if not waits and r.state not in allowed:
        last = r.last_message.label if r.last_message else "nothing"
        a.problems.append("%s: CommandState %s on a response ending with %s (Windows: "
                          "Pending only with a host call it waits on, Running only "
                          "after the client answered one, else none until Done)"
                          % (where, r.state, last))


def reply_role(r: Reply) -> str:
    """The role of a Receive response, from what it carries."""
    if r.lane == "pool":
        return "Receive/pool"
    if r.carries_final_state:
        return "Receive/pipeline/final"
    if r.last_message is not None and r.last_message.blocking_call:
        return "Receive/pipeline/host-call"
    return "Receive/pipeline"


def roles(a: Analysis) -> list[tuple[str, Exchange, Reply | None]]:
    """Every response of a session with its role."""
    out = []
    for ex in a.exchanges:
        if ex.response is None:
            continue
        if ex.fault:
            sub = ex.response.find("s:Body/s:Fault/s:Code/s:Subcode/s:Value")
            out.append(("Fault/" + (sub.text or "").rsplit(":", 1)[-1], ex, None))
        elif ex.action == "Receive":
            if ex.reply is not None:
                out.append((reply_role(ex.reply), ex, ex.reply))
        else:
            out.append((ex.action, ex, None))
    return out


# ---------------------------------------------------------------------------
# Windows side: templates and normalisation
# ---------------------------------------------------------------------------

SCENARIO_TRACES = [
    "test_psrp_multiple_invocations.yml", "test_psrp_open_runspace.yml",
    "test_psrp_error_failed.yml", "test_psrp_with_input.yml",
    "test_psrp_pshost_ui_mocked_methods.yml", "test_psrp_nested_command.yml",
    "test_psrp_get_command_metadata.yml", "test_psrp_set_runspaces.yml",
    "test_psrp_reset_runspace_state.yml", "test_psrp_stream_output_invocation.yml",
    "test_psrp_with_history.yml", "test_psrp_with_no_history.yml",
    "test_psrp_small_msg_size.yml", "test_psrp_no_profile.yml",
]
# Recorded w:TimedOut faults (a Receive that found nothing in time).
EXTRA_TRACES = ["test_psrp_long_running_cmdlet.yml"]

_windows_cache: dict[str, Analysis] = {}


def windows(name: str) -> Analysis:
    if name not in _windows_cache:
        _windows_cache[name] = analyse(exchanges_from_trace(name))
    return _windows_cache[name]


def templates(own: str) -> dict[str, tuple[str, list[str]]]:
    """The Windows response shape of each role: from the scenario's own
    recording where it has that role, else from the other recordings."""
    out: dict[str, tuple[str, list[str]]] = {}
    for name in [own] + SCENARIO_TRACES + EXTRA_TRACES:
        for role, ex, _ in roles(windows(name)):
            if role not in out:
                out[role] = (name, fold_streams(shape(ex.response)))
    return out


def is_module_analysis(m: Msg) -> bool:
    """Windows PowerShell's "Preparing modules for first use." progress,
    as a PROGRESS_RECORD or as the WriteProgress host call carrying it."""
    if m.type == MessageType.PROGRESS_RECORD:
        return m.parsed().activity == MODULE_ANALYSIS
    if m.type == MessageType.PIPELINE_HOST_CALL:
        call = m.parsed()
        if call.method_name == "WriteProgress" and len(call.parameters) > 1:
            return call.parameters[1].get("Activity") == MODULE_ANALYSIS
    return False


# Messages only Windows PowerShell sends (see the module doc).
WINDOWS_ONLY = [is_module_analysis]


def labels(msgs: list[Msg], drop=()) -> list[str]:
    return [m.label for m in msgs if not any(f(m) for f in list(drop))]


def collapse_outputs(seq: list[str]) -> list[str]:
    out: list[str] = []
    for s in seq:
        if s == "PIPELINE_OUTPUT":
            s = "PIPELINE_OUTPUT+"
            if out and out[-1] == s:
                continue
        out.append(s)
    return out


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------

def compare(trace: str, ours: Analysis, *, drop_windows=(), drop_ours=(),
            transform=None) -> None:
    """Fail with every difference between winrmd's session and Windows'."""
    win = windows(trace)
    assert not win.problems, "the Windows recording breaks a rule the test checks " \
        "(fix the test): %s" % win.problems
    errors = list(ours.problems)

    # (a) shapes
    tpl = templates(trace)
    running = "      rsp:CommandState @CommandId=<guid> @State=%sRunning" % STATE_URI
    for role, ex, reply in roles(ours):
        if role not in tpl:
            errors.append("no Windows response to compare a %s with:\n%s" % (role, ex.text))
            continue
        src, want = tpl[role]
        got = fold_streams(shape(ex.response))
        if reply is not None and reply.lane in ours.answered and running in got:
            # Running after an answered host call: no recording shows its
            # shape (see _check_state); it must be a childless CommandState
            # in the place Windows puts Pending.
            got.remove(running)
        if got != want:
            diff = "\n".join(difflib.unified_diff(want, got, "windows " + src, "winrmd",
                                                  lineterm="", n=2))
            errors.append("%s response differs from Windows:\n%s" % (role, diff))
        _check_addressing(errors, role, ex)

    # (b) messages per lane
    drop_w = list(WINDOWS_ONLY) + list(drop_windows)
    for lane in sorted(set(win.lanes) | set(ours.lanes)):
        want = labels(win.lanes.get(lane, []), drop_w)
        got = labels(ours.lanes.get(lane, []), drop_ours)
        if transform is not None:
            want, got = transform(want), transform(got)
        if want != got:
            errors.append("messages on lane %s differ:\n  windows: %s\n  winrmd:  %s"
                          % (lane, want, got))
    assert not errors, "\n\n".join(errors)


def _check_addressing(errors: list[str], role: str, ex: Exchange) -> None:
    mid = ex.request.find("s:Header/a:MessageID").text
    rel = ex.response.find("s:Header/a:RelatesTo")
    if rel is None or rel.text != mid:
        errors.append("%s: RelatesTo %r for MessageID %r"
                      % (role, rel.text if rel is not None else None, mid))
    if role == "Create":
        sid = ex.request.find("s:Body/rsp:Shell").get("ShellId")
        sel = ex.response.find(".//w:Selector[@Name='ShellId']")
        got = ex.response.find("s:Body/rsp:Shell/rsp:ShellId")
        if sel is None or sel.text != sid or got is None or got.text != sid:
            errors.append("Create: the shell id is not the client's %s" % sid)
    if role == "Command":
        cid = ex.request.find("s:Body/rsp:CommandLine").get("CommandId")
        got = ex.response.find("s:Body/rsp:CommandResponse/rsp:CommandId")
        if got is None or got.text != cid:
            errors.append("Command: CommandId %r, client chose %r"
                          % (got.text if got is not None else None, cid))


# ---------------------------------------------------------------------------
# Running the scenarios
# ---------------------------------------------------------------------------

def transport(lab, **kw) -> WSManTransport:
    kw.setdefault("operation_timeout", 10)
    return WSManTransport(lab.http_url, lab.user, lab.password, auth="basic", **kw)


def run_pool(lab, body, *, host=None, **tkw) -> Analysis:
    """Open a pool, run ``body(pool)``, close it; the session decoded."""
    tr = transport(lab, **tkw)
    pool = RunspacePool(tr, host=host).open(timeout=30)
    try:
        body(pool)
    finally:
        pool.close()
    assert len(tr.history) < tr.history.maxlen, "the session is longer than the history"
    return analyse(exchanges_from_history(tr))


def test_windows_recordings_follow_the_rules():
    """The rules of (b) hold for every recording used here, and the response
    shapes Windows used for one role agree across recordings (apart from
    the CreateResponse fields that follow the client's options)."""
    seen: dict[str, tuple[str, list[str]]] = {}
    for name in SCENARIO_TRACES:
        a = windows(name)
        assert not a.problems, (name, a.problems)
        for role, ex, _ in roles(a):
            got = fold_streams(shape(ex.response))
            if role == "Create":
                got = [ln for ln in got if "rsp:ProfileLoaded" not in ln]
            if role in seen:
                assert got == seen[role][1], (role, name, seen[role][0])
            else:
                seen[role] = (name, got)
    assert set(seen) == {"Create", "Command", "Send", "Signal", "Delete", "Get", "Receive/pool",
                         "Receive/pipeline", "Receive/pipeline/final",
                         "Receive/pipeline/host-call"}


def test_comparison_finds_differences():
    """The comparison is not blind: different sessions, a response shape
    Windows did not use and a misplaced CommandState are all reported."""
    with pytest.raises(AssertionError, match="messages on lane pipeline2"):
        compare("test_psrp_with_history.yml", windows("test_psrp_with_no_history.yml"))
    with pytest.raises(AssertionError, match="rsp:ProfileLoaded"):
        compare("test_psrp_no_profile.yml", windows("test_psrp_open_runspace.yml"))
    exchanges = exchanges_from_trace("test_psrp_multiple_invocations.yml")
    for ex in exchanges:
        if "CommandState/Done" in ex.text:
            ex.response = Doc(ex.text.replace("CommandState/Done", "CommandState/Running"))
            break
    problems = analyse(exchanges).problems
    assert len(problems) == 1 and "final PIPELINE_STATE" in problems[0], problems


def test_open_runspace(lab):
    ours = run_pool(lab, lambda pool: None)
    assert [m.label for m in ours.lanes["pool"]] == [
        "SESSION_CAPABILITY", "APPLICATION_PRIVATE_DATA", "RUNSPACEPOOL_STATE(2)"]
    compare("test_psrp_open_runspace.yml", ours)


def test_multiple_invocations(lab):
    """The same PowerShell object (same CommandId) run twice, each run
    ended by Signal Terminate; Windows accepted the reused CommandId."""
    def body(pool):
        ps = PowerShell(pool).add_script("1+1")
        assert ps.invoke(timeout=30) == [2]
        assert ps.invoke(timeout=30) == [2]
    compare("test_psrp_multiple_invocations.yml", run_pool(lab, body))


def test_error_failed(lab):
    def body(pool):
        ps = PowerShell(pool).add_script(
            "$ErrorActionPreference = 'Stop'; Write-Output before; Write-Error error; "
            "Write-Output after")
        assert ps.invoke(timeout=30) == ["before"]
        assert ps.state == PSInvocationState.FAILED
    ours = run_pool(lab, body)
    assert ours.lanes["pipeline1"][-1].label == "PIPELINE_STATE(5)"
    compare("test_psrp_error_failed.yml", ours)


WITH_INPUT_SCRIPT = """begin {
                $DebugPreference = 'Continue'
                Write-Debug "Start Block"
            }
            process {
                $input
            }
            end {
                Write-Debug "End Block"
            }"""


def test_with_input(lab):
    def body(pool):
        ps = PowerShell(pool).add_script(WITH_INPUT_SCRIPT)
        out = ps.invoke(input=["1", 2, {"a": "b"}, ["a", "b"]], timeout=30)
        assert out == ["1", 2, {"a": "b"}, ["a", "b"]]
    compare("test_psrp_with_input.yml", run_pool(lab, body))


# The recorded script without the two calls that return a SecureString
# ($host.UI.ReadLineAsSecureString() and $host.UI.PromptForCredential(...)):
# pypsrp answered them after a PUBLIC_KEY exchange, which the test client
# does not implement.
UI_SCRIPT = """$host.UI.ReadLine()
$host.UI.Write("Write1")
$host.UI.Write([System.ConsoleColor]::Blue, [System.ConsoleColor]::White, "Write2")
$host.UI.WriteLine()
$host.UI.WriteLine("WriteLine2")
$host.UI.WriteLine([System.ConsoleColor]::Gray, [System.ConsoleColor]::Green, "WriteLine3")
$host.UI.WriteErrorLine("WriteErrorLine")
$host.UI.WriteDebugLine("WriteDebugLine")
$host.UI.WriteProgress(1, (New-Object -TypeName System.Management.Automation.ProgressRecord -ArgumentList 2, "activity", "description"))
$host.UI.WriteVerboseLine("WriteVerboseLine")
$host.UI.WriteWarningLine("WriteWarningLine")

$prompt_field = New-Object -TypeName System.Management.Automation.Host.FieldDescription -ArgumentList @("prompt field")
$prompt_field.Label = "PromptLabel"
$host.UI.Prompt("Prompt caption", "Prompt message", $prompt_field)

$choice_field1 = New-Object -TypeName System.Management.Automation.Host.ChoiceDescription -ArgumentList "Prompt1 label", "Prompt1 help"
$choice_field2 = New-Object -TypeName System.Management.Automation.Host.ChoiceDescription -ArgumentList "Prompt2 label", "Prompt2 help"
$host.UI.PromptForChoice("PromptForChoice caption", "PromptForChoice message", @($choice_field1, $choice_field2), 0)"""


def _secure_string_calls(win: Analysis):
    """A filter for the Windows messages of the removed SecureString calls:
    the calls, the outputs of their results, and the session key exchange."""
    lane = win.lanes["pipeline1"]
    removed = set()
    for i, m in enumerate(lane):
        if m.label in ("PIPELINE_HOST_CALL:ReadLineAsSecureString",
                       "PIPELINE_HOST_CALL:PromptForCredential2"):
            removed.add(id(m))
            # the value the call returned is the next PIPELINE_OUTPUT
            nxt = next(n for n in lane[i + 1:] if n.type == MessageType.PIPELINE_OUTPUT)
            removed.add(id(nxt))
    return lambda m: id(m) in removed or m.type == MessageType.ENCRYPTED_SESSION_KEY


def test_pshost_ui_mocked_methods(lab):
    """Host calls: ReadLine/Prompt/PromptForChoice wait for the client's
    PIPELINE_HOST_RESPONSE (sent on a shell-level ``pr`` stream, as pypsrp
    does), Write* do not."""
    host = Host(read_lines=["line from client", "prompted"])

    def body(pool):
        pool.transport.pr_command_id = False
        ps = PowerShell(pool).add_script(UI_SCRIPT)
        out = ps.invoke(timeout=40)
        assert ps.state == PSInvocationState.COMPLETED, ps.invocation_error
        assert out == ["line from client", {"prompt field": "prompted"}, 0]
    ours = run_pool(lab, body, host=host)
    assert [c.method_name for c in host.calls if c.expects_response] == [
        "ReadLine", "Prompt", "PromptForChoice"]
    compare("test_psrp_pshost_ui_mocked_methods.yml", ours,
            drop_windows=[_secure_string_calls(windows(
                "test_psrp_pshost_ui_mocked_methods.yml"))])


def test_nested_command_stopped_with_ctrl_c(lab):
    """An endless pipeline, a nested pipeline (IsNested) run while it runs,
    then pypsrp's bare ``powershell/signal/ctrl_c`` on the outer one and
    Delete, without a Receive on the outer pipeline (as recorded)."""
    attempts = []

    def body(pool):
        outer = PowerShell(pool).add_script("$i = 0; while ($true) { $i++ }")
        outer.begin_invoke()
        # The outer pipeline is acknowledged before its script runs; until
        # it has set $i the nested Get-Variable finds nothing (an error
        # record, no output).  Try again a few times.
        for _ in range(10):
            inner = PowerShell(pool, is_nested=True).add_command("Get-Variable")
            inner.add_parameter("Name", "i")
            out = inner.invoke(timeout=30)
            attempts.append(out)
            if out:
                break
            time.sleep(0.5)
        # (Windows read 376241: its loop had run a while; pwsh lets the
        # nested pipeline in at an earlier point of the loop.)
        assert len(out) == 1 and out[0]["Name"] == "i" and isinstance(out[0]["Value"], int)
        pool.transport.signal(outer.pid, "powershell/signal/ctrl_c")
        outer._lane_open = False      # Delete ends it, as in the recording
    ours = run_pool(lab, body)
    # Only the attempt that found $i is the recorded nested pipeline.
    last = "pipeline%d" % (1 + len(attempts))
    for n in range(2, 1 + len(attempts)):
        del ours.lanes["pipeline%d" % n]
    ours.lanes["pipeline2"] = ours.lanes.pop(last)
    compare("test_psrp_nested_command.yml", ours)


def test_get_command_metadata(lab):
    """The three recorded GET_COMMAND_METADATA requests.  Which commands
    match depends on the installation (see the module doc)."""
    def body(pool):
        first = pool.get_command_metadata("new-pssession*", command_type=511)
        assert {m["Name"] for m in first} >= {"New-PSSession", "New-PSSessionOption"}
        pool.get_command_metadata("new-*", command_type=2)
        pool.get_command_metadata("Get-*", command_type=511,
                                  namespace=["Microsoft.WSMan.Management"])
    ours = run_pool(lab, body)
    for lane in ("pipeline1", "pipeline2", "pipeline3"):
        msgs = ours.lanes[lane]
        count = msgs[0].parsed().value["Count"]
        outputs = [m for m in msgs if m.type == MessageType.PIPELINE_OUTPUT]
        assert count == len(outputs) - 1, lane
    compare("test_psrp_get_command_metadata.yml", ours, transform=collapse_outputs)


def test_set_runspaces(lab):
    def body(pool):
        assert pool.get_available_runspaces() == 1
        assert pool.set_max_runspaces(5) is True
        assert pool.get_available_runspaces() == 5
        assert pool.set_min_runspaces(2) is True
        assert pool.set_min_runspaces(-1) is False
        assert pool.set_max_runspaces(-1) is False
    compare("test_psrp_set_runspaces.yml", run_pool(lab, body))


def test_reset_runspace_state(lab):
    def body(pool):
        ps = PowerShell(pool, add_to_history=True).add_script("echo hi")
        assert ps.invoke(timeout=30) == ["hi"]
        assert pool.reset_runspace_state() is True
        assert PowerShell(pool).add_script("Get-History").invoke(timeout=30) == []
    compare("test_psrp_reset_runspace_state.yml", run_pool(lab, body))


STREAMS_SCRIPT = """$DebugPreference = 'Continue'
            $VerbosePreference = 'Continue'
            Write-Debug 'debug stream'
            Write-Verbose 'verbose stream'
            Write-Error 'error stream'
            Write-Output 'output stream'
            Write-Warning 'warning stream'
            Write-Information 'information stream'
            """


def test_stream_output_invocation(lab):
    def body(pool):
        ps = PowerShell(pool).add_script(STREAMS_SCRIPT)   # AddInvocationInfo (15)
        assert ps.invoke(timeout=30) == ["output stream"]
        err = ps.streams.error[0]
        assert err.message == "error stream"
    compare("test_psrp_stream_output_invocation.yml", run_pool(lab, body))


@pytest.mark.parametrize("history", [True, False])
def test_history(lab, history):
    def body(pool):
        ps = PowerShell(pool, add_to_history=history)
        assert ps.add_script("Write-Output 1; Write-Output 2").invoke(timeout=30) == [1, 2]
        got = PowerShell(pool).add_script("Get-History").invoke(timeout=30)
        assert len(got) == (1 if history else 0)
    trace = "test_psrp_with_history.yml" if history else "test_psrp_with_no_history.yml"
    compare(trace, run_pool(lab, body))


SMALL_SCRIPT = """begin {
    $big_var = '%s'
} process {
    $input
} end {
    $big_var[0..19999] -join ""
    $big_var[20000..30000] -join ""
}""" % ("a" * 30000)


def test_small_msg_size(lab):
    """MaxEnvelopeSize 32768 on every request: the 30 000-character script
    goes out as a Start fragment in the Command and its End fragment in a
    Send; the outputs come back in responses that each fit the envelope,
    with whole fragments only."""
    def body(pool):
        ps = PowerShell(pool).add_script(SMALL_SCRIPT)
        out = ps.invoke(input=["input"], timeout=40)
        assert out == ["input", "a" * 20000, "a" * 10000]
    ours = run_pool(lab, body, max_envelope_size=32768, auto_envelope_size=False)
    cmd = next(ex for ex in ours.exchanges if ex.action == "Command")
    frags, _ = split_fragments(base64.b64decode(
        cmd.request.find(".//rsp:Arguments").text))
    assert len(frags) == 1 and frags[0].start and not frags[0].end
    for r in ours.replies:
        assert r.size <= 32768, "a ReceiveResponse of %d bytes exceeds MaxEnvelopeSize" % r.size
    compare("test_psrp_small_msg_size.yml", ours)


def test_no_profile(lab):
    """WINRS_NOPROFILE=TRUE: the CreateResponse says ProfileLoaded No.  The
    recorded script reads $env:USERPROFILE, which only Windows sets; HOME
    stands in for it."""
    def body(pool):
        out = PowerShell(pool).add_script("$env:HOME.ToUpperInvariant()").invoke(timeout=30)
        assert len(out) == 1 and out[0].startswith("/") and out[0] == out[0].upper()
    ours = run_pool(lab, body, no_profile=True)
    create = ours.exchanges[0].response
    assert create.find("s:Body/rsp:Shell/rsp:ProfileLoaded").text == "No"
    compare("test_psrp_no_profile.yml", ours)


# ---------------------------------------------------------------------------
# CommandState around host calls, one rule per test
# ---------------------------------------------------------------------------

def _pipeline_replies(ours: Analysis) -> list[Reply]:
    return [r for r in ours.replies if r.lane == "pipeline1"]


def test_void_host_call_is_not_pending(lab):
    """A host call that expects no answer (Write-Host's WriteLine2, call id
    -100) does not make the pipeline Pending: Windows' plugin reports
    Pending only for the calls it waits on (ServerMethodExecutor.
    ExecuteMethod; ExecuteVoidMethod sends without it), and Running only
    after an answer, so this pipeline has no CommandState until Done."""
    def body(pool):
        ps = PowerShell(pool).add_script(
            "Write-Host 'to the host'; Start-Sleep -Seconds 2; 'after'")
        assert ps.invoke(timeout=30) == ["after"]
    ours = run_pool(lab, body, host=Host())
    replies = _pipeline_replies(ours)
    assert any(r.last_message is not None and r.last_message.label ==
               "PIPELINE_HOST_CALL:WriteLine2" for r in replies), \
        "no response ended with the WriteLine2 host call"
    states = [(r.last_message.label if r.last_message else None, r.state)
              for r in replies]
    assert states[-1] == ("PIPELINE_STATE(4)", "Done")
    assert all(st is None for _, st in states[:-1]), states


def test_running_after_host_response(lab):
    """After the client answered a blocking host call, the next responses
    may say Running (the plugin reports it when the answer arrives), never
    Pending again without a new waiting call, and Done at the end."""
    def body(pool):
        ps = PowerShell(pool).add_script(
            "$a = Read-Host; \"got $a\"; Start-Sleep -Seconds 2; 'end'")
        assert ps.invoke(timeout=30) == ["got answer", "end"]
    ours = run_pool(lab, body, host=Host(read_lines=["answer"]))
    assert not ours.problems, ours.problems
    states = [(r.last_message.label if r.last_message else None, r.state)
              for r in _pipeline_replies(ours)]
    assert states[0] == ("PIPELINE_HOST_CALL:ReadLine", "Pending")
    assert states[-1] == ("PIPELINE_STATE(4)", "Done")
    assert all(st in (None, "Running") for _, st in states[1:-1]), states
