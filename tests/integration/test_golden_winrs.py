"""WinRS exchanges replayed against the daemon and compared with Windows.

Each test takes one recorded Windows exchange (tests/data/windows-traces,
test_winrs_*.yml and the cmd exchanges of test_client_execute_cmd*.yml),
replays its requests in order against the lab daemon and compares every
answer with the answer Windows gave.  The requests are the recorded ones
(pypsrp's envelopes, byte for byte) with only these changes:

* a fresh ``wsa:MessageID`` per request and the lab URL in ``wsa:To``;
* the ShellId and CommandId that Windows handed out replaced by the ones
  the daemon handed out;
* Windows command lines replaced by Linux equivalents (named per test),
  a Windows WorkingDirectory by a real directory, and an OperationTimeout
  of PT10S by PT3S to keep the run short.

What is compared for every answer (``wsman_raw.shape``):

* the HTTP status (500 exactly where Windows answered with a fault) and an
  ``application/soap+xml`` Content-Type;
* the whole envelope's shape: element names and namespaces (by URI), every
  attribute and its value (except CommandId and Machine), child order, and
  every text value except those that legitimately differ (GUIDs, base64
  payloads, times, host names and addresses, owner names).  So the Action
  URIs, state URIs, ResourceURIs, stream lists, exit codes, fault
  Code/Subcode (resolved QNames), Reason text, FaultDetail, WSManFault Code
  and message are compared exactly;
* headers: Action, MessageID, To, RelatesTo in Windows' order; RelatesTo
  equal to the request's MessageID byte for byte; the response MessageID
  ``uuid:`` + an upper-case GUID;
* CreateResponse: ``a:Address`` equal to the request's ``a:To``, the
  ShellId selector equal to ``rsp:ShellId``, an upper-case GUID;
* ReceiveResponse: data Streams folded per stream name (Windows and Linux
  children write their output in different chunks) and, when the daemon
  needed several Receives where Windows needed one, the data Streams of all
  of them merged into the last one.  Every intermediate answer must itself
  have Windows' layout (data Streams, then a ``Running`` CommandState).
  The decoded output is checked against what the Linux command prints.
"""
import base64
import re
import time

import pytest

from wsman_raw import (STATE_DONE, ERROR_TIMED_OUT, Wire, assert_same_shape,
                       fault_of, load_trace, new_message_id, parse,
                       receive_order_check, shape, xml_escape)

GUID_RE = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-"
                     r"[0-9A-F]{12}$")
OUTPUT_STREAMS = ["stdout", "stderr"]


def _windows_running_state():
    """The intermediate CommandState Windows sent (the only one recorded:
    test_winrs_operation_timeout.yml, first Receive)."""
    doc = parse(load_trace("test_winrs_operation_timeout.yml")[2]
                ["response"])
    return doc, doc.find(".//rsp:CommandState")


class Replay:
    """Replays the requests of one trace against a lab endpoint."""

    def __init__(self, lab, trace, https=False):
        self.wire = Wire(lab, https=https)
        self.msgs = load_trace(trace)
        self.ids = {}           # Windows id -> daemon id
        self.patched = {}       # message index -> edited Windows response
        self.shell = None
        self.cid = None

    # -- requests ---------------------------------------------------------
    def adapt(self, i, body=None, timeout=None, edit=None):
        """The recorded request i with the substitutions described in the
        module docstring.  ``body`` replaces the s:Body content, ``edit``
        is a function applied to the request text last."""
        req = self.msgs[i]["request"]
        mid = new_message_id()
        req = re.sub(r"<wsa:MessageID>[^<]*</wsa:MessageID>",
                     "<wsa:MessageID>%s</wsa:MessageID>" % mid, req)
        req = re.sub(r"<wsa:To>[^<]*</wsa:To>",
                     "<wsa:To>%s</wsa:To>" % self.wire.url, req)
        for old, new in self.ids.items():
            req = req.replace(old, new)
        if timeout is not None:
            req = re.sub(r"<wsman:OperationTimeout>[^<]*<",
                         "<wsman:OperationTimeout>%s<" % timeout, req)
        if body is not None:
            req = re.sub(r"<s:Body>.*</s:Body>|<s:Body />",
                         lambda m: "<s:Body>%s</s:Body>" % body, req,
                         flags=re.S)
        if edit is not None:
            req = edit(req)
        return req, mid

    def send(self, i, **kw):
        req, mid = self.adapt(i, **kw)
        r = self.wire.soap(req)
        r.message_id = mid
        r.request = req
        self.check_envelope(r, mid)
        return r

    # -- checks -----------------------------------------------------------
    def check_envelope(self, r, mid):
        assert "application/soap+xml" in r.content_type, r
        doc = r.doc
        assert doc.text("s:Header/a:RelatesTo") == mid, \
            "RelatesTo %r is not the request MessageID %r" % (
                doc.text("s:Header/a:RelatesTo"), mid)
        rid = doc.text("s:Header/a:MessageID", "")
        assert rid.startswith("uuid:") and GUID_RE.match(rid[5:]), rid
        assert rid != mid

    def windows(self, i):
        """The Windows response i (parsed), or its edited copy."""
        if i in self.patched:
            return self.patched[i]
        return parse(self.msgs[i]["response"])

    def expect_status(self, i, r):
        want = self.msgs[i].get("transport_error", {}).get("code", 200)
        assert r.status == want, "Windows answered %d, daemon %r" % (want,
                                                                     r)

    def compare(self, i, r, **kw):
        """Status and shape of reply r against the Windows response i."""
        self.expect_status(i, r)
        assert_same_shape(self.windows(i), r.doc, "message %d" % i,
                          receive_order=OUTPUT_STREAMS, **kw)

    # -- operations -------------------------------------------------------
    def create(self, i, **kw):
        r = self.send(i, **kw)
        self.compare(i, r)
        doc = r.doc
        sel = doc.text(".//x:ResourceCreated/a:ReferenceParameters/"
                       "w:SelectorSet/w:Selector[@Name='ShellId']")
        sid = doc.text(".//rsp:Shell/rsp:ShellId")
        assert sel == sid and GUID_RE.match(sid), (sel, sid)
        assert doc.text(".//x:ResourceCreated/a:Address") == self.wire.url
        win = self.windows(i).text(".//rsp:Shell/rsp:ShellId")
        self.ids[win] = sid
        self.shell = sid
        return r

    def command(self, i, command, args=(), **kw):
        """Command request i with the CommandLine replaced by a Linux
        one (same element layout: Command plus Arguments elements)."""
        body = ("<rsp:CommandLine><rsp:Command>%s</rsp:Command>%s"
                "</rsp:CommandLine>"
                % (xml_escape(command), "".join(
                    "<rsp:Arguments>%s</rsp:Arguments>" % xml_escape(a)
                    for a in args)))
        r = self.send(i, body=body, **kw)
        self.compare(i, r)
        if r.status == 200:
            cid = r.doc.text(".//rsp:CommandResponse/rsp:CommandId")
            assert GUID_RE.match(cid), cid
            win = self.windows(i).text(".//rsp:CommandId")
            self.ids[win] = cid
            self.cid = cid
        return r

    def receive_all(self, i, deadline=20, prior=(), **kw):
        """Receive (request i) until Done; compare the merged answer with
        Windows' single answer.  ``prior`` holds ReceiveResponses already
        received for the command (each checked here too).  Returns the
        decoded streams, the exit code and the replies."""
        replies = []
        end = time.monotonic() + deadline
        run_doc, run_state = _windows_running_state()
        pending = list(prior)
        while True:
            if pending:
                r = pending.pop(0)
            else:
                assert time.monotonic() < end, "no Done in %ds" % deadline
                r = self.send(i, **kw)
            replies.append(r)
            if r.status != 200:
                # Only the "poll again" fault may interrupt the sequence.
                assert fault_of(r)["code"] == ERROR_TIMED_OUT, r
                continue
            problem = receive_order_check(r.doc)
            assert problem is None, (problem, r)
            st = r.doc.find(".//rsp:CommandState")
            if st is not None and st.get("State") == STATE_DONE:
                break
            # An intermediate answer: data plus Windows' Running state.
            assert r.doc.findall(".//rsp:Stream"), \
                "intermediate ReceiveResponse without data: %r" % r
            assert st is not None, "intermediate answer without state"
            assert shape(run_doc, run_state) == shape(r.doc, st), \
                (shape(run_doc, run_state), shape(r.doc, st))
        out = {}
        for p in replies:
            if p.status != 200:
                continue
            for s in p.doc.findall(".//rsp:Stream"):
                assert s.get("CommandId") == self.cid, s.attrib
                out[s.get("Name")] = (out.get(s.get("Name"), b"")
                                      + base64.b64decode(s.text or ""))
        # Merge: the data Streams of the earlier answers go in front of
        # the last answer's children, then the whole is compared.
        final = replies[-1]
        rr = final.doc.find("s:Body/rsp:ReceiveResponse")
        earlier = [s for p in replies[:-1] if p.status == 200
                   for s in p.doc.findall(".//rsp:Stream")]
        for n, s in enumerate(earlier):
            rr.insert(n, s)
        self.compare(i, final)
        code = int(final.doc.text(".//rsp:ExitCode"))
        return out, code, replies

    def simple(self, i, **kw):
        """Send request i and compare the answer (Signal, Delete, Send,
        faults)."""
        r = self.send(i, **kw)
        self.compare(i, r)
        return r


# ---------------------------------------------------------------------------


def test_standard(lab):
    # cmd.exe /c echo hi  ->  echo hi; then ctrl_c after Done, Delete.
    rp = Replay(lab, "test_winrs_standard.yml")
    rp.create(0)
    rp.command(1, "echo", ["hi"])
    out, code, _ = rp.receive_all(2)
    assert (out.get("stdout"), out.get("stderr", b""), code) == \
        (b"hi\n", b"", 0)
    rp.simple(3)        # Signal ctrl_c on a finished command: success
    rp.simple(4)        # Delete


def test_bad_cmd_id(lab):
    # The Receive names a CommandId that does not exist (the recorded
    # override): w:InvalidSelectors, UnexpectedSelectors, 2150858843 with
    # Windows' command-specific message.
    rp = Replay(lab, "test_winrs_bad_cmd_id.yml")
    rp.create(0)
    rp.command(1, "echo", ["hi"])
    bad = rp.msgs[2]["overrides"][0]["attributes"]["CommandId"]
    r = rp.send(2, edit=lambda s: re.sub(
        r'(<rsp:DesiredStream CommandId=")[^"]*"', r'\g<1>%s"' % bad, s))
    rp.compare(2, r)
    rp.simple(3)
    rp.simple(4)


def test_fail_poll_process(lab):
    # Receive without CommandId on a cmd shell with no command:
    # w:InvalidParameter, code 87 inside a Shell cmd plugin ProviderFault.
    rp = Replay(lab, "test_winrs_fail_poll_process.yml", https=True)
    rp.create(0)
    rp.simple(1)
    rp.simple(2)


def test_open_already_opened(lab):
    rp = Replay(lab, "test_winrs_open_already_opened.yml", https=True)
    rp.create(0)
    rp.simple(1)


def test_environment(lab):
    # Environment variables, one with a name full of punctuation.
    # cmd.exe /c set  ->  the shell's own environment block, read from
    # /proc (dash drops names that are not shell identifiers from "env").
    rp = Replay(lab, "test_winrs_environment.yml")
    win = rp.windows(0)
    req = parse(rp.msgs[0]["request"])
    sent = [(v.get("Name"), v.text)
            for v in req.findall(".//rsp:Environment/rsp:Variable")]
    # Windows echoed the third name with its backslash dropped; the echo
    # is expected to carry the name as the client sent it.
    for v, (name, _) in zip(win.findall(".//rsp:Variable"), sent):
        v.set("Name", name)
    rp.patched[0] = win
    rp.create(0)
    rp.command(1, "tr", ["'\\0'", "'\\n'", "<", "/proc/$$/environ"])
    out, code, _ = rp.receive_all(2)
    assert code == 0
    lines = out["stdout"].decode("utf-8", "replace").splitlines()
    for name, value in sent:
        assert "%s=%s" % (name, value) in lines, (name, lines)
    rp.simple(3)
    rp.simple(4)


def test_extra_opts(lab, tmp_path):
    # IdleTimeOut PT60S (echoed PT60.000S), Lifetime and Name (not
    # echoed), WorkingDirectory (echoed right after ClientIP).
    # powershell.exe (pwd).Path  ->  pwd
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    rp = Replay(lab, "test_winrs_extra_opts.yml")
    win = rp.windows(0)
    win.find(".//rsp:WorkingDirectory").text = str(workdir)
    rp.patched[0] = win
    rp.create(0, edit=lambda s: s.replace("C:\\Windows", str(workdir)))
    rp.command(1, "pwd")
    out, code, _ = rp.receive_all(2)
    assert (out["stdout"], code) == (str(workdir).encode() + b"\n", 0)
    rp.simple(3)
    rp.simple(4)


def test_noprofile(lab):
    # WINRS_NOPROFILE=TRUE with MustComply must be accepted.
    # cmd.exe /c set  ->  env
    rp = Replay(lab, "test_winrs_noprofile.yml")
    rp.create(0)
    rp.command(1, "env")
    out, code, _ = rp.receive_all(2)
    assert code == 0 and b"PATH=" in out["stdout"]
    rp.simple(3)
    rp.simple(4)


def test_unicode(lab):
    # WINRS_CODEPAGE 65001; powershell.exe Write-Host こんにちは  ->
    # echo こんにちは (one Arguments element carrying the non-ASCII text).
    rp = Replay(lab, "test_winrs_unicode.yml")
    rp.create(0)
    rp.command(1, "echo", ["こんにちは"])
    out, code, _ = rp.receive_all(2)
    assert (out["stdout"], code) == ("こんにちは\n".encode(), 0)
    rp.simple(3)
    rp.simple(4)


def test_stderr_rc(lab):
    # cmd.exe "/c echo out && echo err>&2 && exit 1": the same line works
    # in sh once "cmd.exe /c" is dropped.
    rp = Replay(lab, "test_winrs_stderr_rc.yml")
    rp.create(0)
    rp.command(1, "echo", ["out && echo err>&2 && exit 1"])
    out, code, _ = rp.receive_all(2)
    assert (out.get("stdout"), out.get("stderr"), code) == \
        (b"out\n", b"err\n", 1)
    rp.simple(3)
    rp.simple(4)


def test_send(lab):
    # powershell.exe -  ->  sh -s (a script on stdin); two Sends, the
    # first End="False", the second End="True" (pypsrp's spelling).
    rp = Replay(lab, "test_winrs_send.yml")
    rp.create(0)
    rp.command(1, "sh", ["-s"])
    for i, line in ((2, b"echo 'output 1';\n"), (3, b"echo 'output 2'\n")):
        rp.simple(i, edit=lambda s, line=line: re.sub(
            r'(<rsp:Stream[^>]*>)[^<]*<',
            lambda m: m.group(1) + base64.b64encode(line).decode() + "<",
            s))
    out, code, _ = rp.receive_all(4)
    assert (out["stdout"], code) == (b"output 1\noutput 2\n", 0)
    rp.simple(5)
    rp.simple(6)


def test_operation_timeout(lab):
    # OperationTimeout PT10S shortened to PT3S.  Windows: the first
    # Receive returns "hi" with State Running, the next two end in the
    # w:TimedOut fault (HTTP 500), the last returns "hi again" and Done.
    # powershell.exe "Write-Host hi; Start-Sleep 30; Write-Host hi again"
    # -> echo hi; sleep 7; echo hi again.  At least two time-outs must
    # occur, each answered before the client's own 3 s deadline.
    rp = Replay(lab, "test_winrs_operation_timeout.yml")
    rp.create(0, timeout="PT3S")
    rp.command(1, "echo", ["hi; sleep 7; echo hi again"], timeout="PT3S")
    r = rp.send(2, timeout="PT3S")
    rp.compare(2, r)
    assert base64.b64decode(r.doc.text(".//rsp:Stream")) == b"hi\n"
    timeouts = 0
    while True:
        t0 = time.monotonic()
        r = rp.send(3, timeout="PT3S")
        took = time.monotonic() - t0
        if r.status == 500:
            rp.compare(3, r)
            assert 0.4 < took < 3.0, took
            timeouts += 1
            assert timeouts < 8
            continue
        break
    assert timeouts >= 2
    # "hi again" and Done: in one answer as on Windows, or the output
    # first (with Running) and Done in the next one.
    out, code, _ = rp.receive_all(5, timeout="PT3S", prior=[r])
    assert (out["stdout"], code) == (b"hi again\n", 0)
    rp.simple(6, timeout="PT3S")
    rp.simple(7, timeout="PT3S")


def test_no_cmd_shell(lab):
    # WINRS_SKIP_CMD_SHELL=TRUE with a program that does not exist:
    # w:InternalError, 2147942402 "The system cannot find the file
    # specified." in a Shell cmd plugin ProviderFault (Server 2008 R2).
    # The second Command names the program by its full path and works.
    rp = Replay(lab, "test_winrs_no_cmd_shell.yml")
    rp.create(0)
    r = rp.command(1, "no-such-program-for-winrmd", ["Write-Host", "hi"])
    assert r.status == 500
    rp.command(2, "/bin/echo", ["Write-Host", "hi"])
    out, code, _ = rp.receive_all(3)
    assert (out["stdout"], code) == (b"Write-Host hi\n", 0)
    for i in range(4, len(rp.msgs)):
        rp.simple(i)


@pytest.mark.parametrize("trace", ["test_client_execute_cmd.yml",
                                   "test_client_execute_cmd_environment.yml"])
def test_client_execute_cmd(lab, trace):
    # pypsrp Client.execute_cmd: Create, Command with the whole line in
    # rsp:Command, Receive, ctrl_c, Delete (twice in the first trace).
    # dir -> ls -a /; echo abc -> echo abc; set -> env.
    rp = Replay(lab, trace, https=True)
    linux = {"dir": "ls -a /", "echo abc": "echo abc", "set": "env"}
    i = 0
    while i < len(rp.msgs):
        req = rp.msgs[i]["request"]
        if "/transfer/Create<" in req:
            rp.create(i)
        elif "/shell/Command<" in req:
            cmd = parse(req).text(".//rsp:Command")
            rp.command(i, linux[cmd])
            out, code, _ = rp.receive_all(i + 1)
            assert code == 0
            if cmd == "echo abc":
                assert out["stdout"] == b"abc\n"
            elif cmd == "set":
                lines = out["stdout"].splitlines()
                assert b'double_quote=double " quote' in lines, lines
                assert b"single_quote=single ' quote" in lines, lines
            i += 1
        else:
            rp.simple(i)
        i += 1
