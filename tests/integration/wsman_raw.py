"""Raw WS-Management over HTTP for the conformance tests.

The conformance tests talk to the daemon byte by byte, without a client
library that would hide what went over the wire.  This module provides:

* ``Wire``: POST (or any method) a body to the lab endpoint with
  http.client, with or without Basic credentials, over HTTP or HTTPS, with
  a Content-Length or a chunked body; the answer comes back as a ``Reply``
  (status, headers, raw bytes, parsed XML).
* ``envelope()``: a request envelope in the form pypsrp writes it (the form
  of the recorded Windows exchanges in tests/data/windows-traces).
* ``parse()``: XML parsing that keeps, for every element, the namespace
  prefixes in scope, so QName values such as ``s:Sender`` can be resolved
  to (namespace URI, local name).
* ``fault_of()``: the fields of a SOAP fault.
* ``shape()`` and ``assert_same_shape()``: the XML shape comparer used
  against the Windows traces (see ``shape`` for what is compared).
* ``load_trace()``: the recorded request/response pairs of one trace.
* ``Shell``: a cmd shell driven through raw envelopes.
"""
import base64
import difflib
import http.client
import pathlib
import re
import ssl
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import yaml

HERE = pathlib.Path(__file__).resolve().parent
DATA = HERE.parent / "data"
TRACES = DATA / "windows-traces"
CLIENT_REQUESTS = DATA / "client-requests"

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
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "wsmid": "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd",
    "xml": "http://www.w3.org/XML/1998/namespace",
    "soap11": "http://schemas.xmlsoap.org/soap/envelope/",
}
_PREFIX_OF = {uri: prefix for prefix, uri in NS.items()}

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
T = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
S = SHELL_URI + "/"
ENUM = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/"
ACTION = {
    "Create": T + "Create", "Delete": T + "Delete", "Get": T + "Get",
    "Command": S + "Command", "Send": S + "Send", "Receive": S + "Receive",
    "Signal": S + "Signal", "Enumerate": ENUM + "Enumerate",
}
FAULT_ACTION_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
FAULT_ACTION_ADDR = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
FAULT_DETAIL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
STATE_DONE = S + "CommandState/Done"
STATE_RUNNING = S + "CommandState/Running"
SIGNAL = {name: S + "signal/" + name
          for name in ("terminate", "ctrl_c", "ctrl_break")}

ERROR_TIMED_OUT = 2150858793
ERROR_INVALID_SELECTORS = 2150858843


def q(prefix, local):
    """Clark notation {uri}local for a canonical prefix."""
    return "{%s}%s" % (NS[prefix], local)


def new_message_id():
    return "uuid:" + str(uuid.uuid4()).upper()


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

class Doc:
    """A parsed document: the root element and the in-scope namespace
    prefixes of every element (``nsmap[elem]``)."""

    def __init__(self, root, nsmap):
        self.root = root
        self.nsmap = nsmap

    def resolve(self, elem, qname):
        """Resolve a QName text value (``s:Sender``) in elem's scope to
        Clark notation; an unbound prefix gives ``{?prefix}local``."""
        qname = (qname or "").strip()
        prefix, _, local = qname.rpartition(":")
        uri = self.nsmap.get(elem, {}).get(prefix)
        if uri is None:
            return "{?%s}%s" % (prefix, local)
        return "{%s}%s" % (uri, local)

    def find(self, path):
        return self.root.find(path, NS)

    def findall(self, path):
        return self.root.findall(path, NS)

    def text(self, path, default=None):
        e = self.root.find(path, NS)
        if e is None:
            return default
        return e.text or ""


def parse(data):
    """Parse XML bytes or text; raises ET.ParseError on malformed input."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    parser = ET.XMLPullParser(events=("start-ns", "start", "end"))
    scopes = [{"xml": NS["xml"]}]
    pending = {}
    nsmap = {}
    root = None
    parser.feed(data)
    parser.close()
    for event, item in parser.read_events():
        if event == "start-ns":
            prefix, uri = item
            pending[prefix] = uri
        elif event == "start":
            scope = dict(scopes[-1])
            scope.update(pending)
            pending = {}
            scopes.append(scope)
            nsmap[item] = scope
            if root is None:
                root = item
        else:
            scopes.pop()
    return Doc(root, nsmap)


def decode_body(raw, content_type):
    """Body bytes to text following the Content-Type charset / BOM."""
    ct = (content_type or "").lower().replace(" ", "")
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le")
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be")
    if "charset=utf-16" in ct or "charset=\"utf-16" in ct:
        return raw.decode("utf-16-le")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8")


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Reply:
    """One HTTP answer."""

    def __init__(self, status, headers, raw, will_close):
        self.status = status
        self.headers = headers          # http.client.HTTPMessage
        self.raw = raw
        self.will_close = will_close
        self._doc = None

    @property
    def content_type(self):
        return self.headers.get("Content-Type", "")

    def header_lines(self, name):
        return self.headers.get_all(name) or []

    @property
    def text(self):
        return decode_body(self.raw, self.content_type)

    @property
    def doc(self):
        if self._doc is None:
            self._doc = parse(_strip_decl(self.text))
        return self._doc

    @property
    def is_fault(self):
        return self.doc.find("s:Body/s:Fault") is not None

    def __repr__(self):
        return "<Reply %d %r %r>" % (self.status, self.content_type,
                                      self.raw[:2000])


def _strip_decl(text):
    # An XML declaration naming another encoding cannot be parsed from an
    # already decoded string; drop it.
    return re.sub(r"^\s*<\?xml[^>]*\?>", "", text).encode("utf-8")


class Wire:
    """HTTP(S) access to one lab endpoint."""

    def __init__(self, lab, https=False):
        self.lab = lab
        self.https = https
        self.url = lab.https_url if https else lab.http_url
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.user, self.password = lab.user, lab.password

    def basic(self, user=None, password=None):
        cred = "%s:%s" % (user if user is not None else self.user,
                          password if password is not None
                          else self.password)
        return "Basic " + base64.b64encode(cred.encode()).decode()

    def connection(self, timeout=30):
        if self.https:
            ctx = ssl.create_default_context(cafile=self.lab.ca_file)
            ctx.check_hostname = False
            return http.client.HTTPSConnection(self.host, self.port,
                                               timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout)

    def request(self, body, headers=None, auth=True, method="POST",
                path=None, conn=None, chunked=False, timeout=30,
                content_type="application/soap+xml;charset=UTF-8"):
        """Send one request; returns a Reply.  ``conn`` reuses an open
        http.client connection (keep-alive); otherwise a fresh one is used
        and closed."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        own = conn is None
        if own:
            conn = self.connection(timeout)
        try:
            conn.putrequest(method, path or self.path, skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", "%s:%d" % (self.host, self.port))
            hdrs = {}
            if content_type is not None and body is not None:
                hdrs["Content-Type"] = content_type
            if auth is True:
                hdrs["Authorization"] = self.basic()
            elif isinstance(auth, str):
                hdrs["Authorization"] = auth
            hdrs.update(headers or {})
            if chunked:
                hdrs["Transfer-Encoding"] = "chunked"
            elif body is not None:
                hdrs["Content-Length"] = str(len(body))
            for k, v in hdrs.items():
                if v is not None:
                    conn.putheader(k, v)
            conn.endheaders()
            if body:
                if chunked:
                    step = 16384
                    for i in range(0, len(body), step):
                        part = body[i:i + step]
                        conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
                    conn.send(b"0\r\n\r\n")
                else:
                    conn.send(body)
            elif chunked:
                conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            raw = resp.read()
            return Reply(resp.status, resp.msg, raw, resp.will_close)
        finally:
            if own:
                conn.close()

    def soap(self, body, **kw):
        """POST an envelope and return the Reply (any status)."""
        return self.request(body, **kw)


# ---------------------------------------------------------------------------
# Envelopes (pypsrp's form, as in the recorded Windows exchanges)
# ---------------------------------------------------------------------------

def envelope(action, resource_uri=CMD_URI, body="", selectors=None,
             options=None, message_id=None, to="http://localhost/wsman",
             timeout="PT20S", max_envelope=153600, extra_headers="",
             reply_to=ANONYMOUS, drop=()):
    """Build a request envelope.  ``options`` is a list of (name, value)
    or (name, value, must_comply); ``drop`` names headers to leave out
    (Action, MessageID, ReplyTo, To, ...) for the fault tests."""
    action = ACTION.get(action, action)
    message_id = message_id or new_message_id()
    h = []
    if "Action" not in drop:
        h.append('<wsa:Action s:mustUnderstand="true">%s</wsa:Action>'
                 % action)
    h.append('<wsmv:DataLocale s:mustUnderstand="false" xml:lang="en-US" />'
             '<wsman:Locale s:mustUnderstand="false" xml:lang="en-US" />')
    if max_envelope is not None:
        h.append('<wsman:MaxEnvelopeSize s:mustUnderstand="true">%s'
                 '</wsman:MaxEnvelopeSize>' % max_envelope)
    if "MessageID" not in drop:
        h.append("<wsa:MessageID>%s</wsa:MessageID>" % message_id)
    if timeout is not None:
        h.append("<wsman:OperationTimeout>%s</wsman:OperationTimeout>"
                 % timeout)
    if "ReplyTo" not in drop:
        h.append('<wsa:ReplyTo><wsa:Address s:mustUnderstand="true">%s'
                 '</wsa:Address></wsa:ReplyTo>' % reply_to)
    if resource_uri is not None:
        h.append('<wsman:ResourceURI s:mustUnderstand="true">%s'
                 '</wsman:ResourceURI>' % resource_uri)
    if "To" not in drop:
        h.append("<wsa:To>%s</wsa:To>" % to)
    if options:
        h.append('<wsman:OptionSet s:mustUnderstand="true">')
        for opt in options:
            name, value = opt[0], opt[1]
            mc = ' MustComply="true"' if len(opt) > 2 and opt[2] else ""
            h.append('<wsman:Option%s Name="%s">%s</wsman:Option>'
                     % (mc, name, value))
        h.append("</wsman:OptionSet>")
    if selectors:
        h.append("<wsman:SelectorSet>")
        for name, value in selectors.items():
            h.append('<wsman:Selector Name="%s">%s</wsman:Selector>'
                     % (name, value))
        h.append("</wsman:SelectorSet>")
    h.append(extra_headers)
    return ('<s:Envelope xmlns:rsp="%s" xmlns:s="%s" xmlns:wsa="%s" '
            'xmlns:wsman="%s" xmlns:wsmv="%s"><s:Header>%s</s:Header>'
            '<s:Body>%s</s:Body></s:Envelope>'
            % (NS["rsp"], NS["s"], NS["a"], NS["w"], NS["p"], "".join(h),
               body)), message_id


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


CREATE_BODY = ("<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>"
               "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
               "</rsp:Shell>")


def command_body(command, args=(), command_id=None):
    cid = ' CommandId="%s"' % command_id if command_id else ""
    return ("<rsp:CommandLine%s><rsp:Command>%s</rsp:Command>%s"
            "</rsp:CommandLine>"
            % (cid, xml_escape(command),
               "".join("<rsp:Arguments>%s</rsp:Arguments>" % xml_escape(a)
                       for a in args)))


def receive_body(command_id=None, streams="stdout stderr"):
    cid = ' CommandId="%s"' % command_id if command_id else ""
    return ("<rsp:Receive><rsp:DesiredStream%s>%s</rsp:DesiredStream>"
            "</rsp:Receive>" % (cid, streams))


def send_body(command_id, data, end=None, stream="stdin"):
    e = ' End="%s"' % end if end is not None else ""
    return ('<rsp:Send><rsp:Stream Name="%s" CommandId="%s"%s>%s'
            "</rsp:Stream></rsp:Send>"
            % (stream, command_id, e, base64.b64encode(data).decode()))


def signal_body(command_id, code):
    code = SIGNAL.get(code, code)
    cid = ' CommandId="%s"' % command_id if command_id else ""
    return ("<rsp:Signal%s><rsp:Code>%s</rsp:Code></rsp:Signal>"
            % (cid, code))


class Shell:
    """A cmd shell driven through raw envelopes (for the fault tests)."""

    def __init__(self, wire, timeout="PT20S"):
        self.wire = wire
        self.timeout = timeout
        env, _ = envelope("Create", body=CREATE_BODY, to=wire.url,
                          timeout=timeout)
        r = wire.soap(env)
        assert r.status == 200, r
        self.id = r.doc.text(".//w:Selector[@Name='ShellId']").strip()

    def call(self, action, body="", shell_id=None, **kw):
        kw.setdefault("timeout", self.timeout)
        sel = {"ShellId": shell_id or self.id}
        env, mid = envelope(action, body=body, selectors=sel,
                            to=self.wire.url, **kw)
        r = self.wire.soap(env)
        r.message_id = mid
        return r

    def command(self, command, args=()):
        r = self.call("Command", command_body(command, args))
        assert r.status == 200, r
        return r.doc.text(".//rsp:CommandId").strip()

    def receive(self, cid, **kw):
        return self.call("Receive", receive_body(cid), **kw)

    def send(self, cid, data, end=None):
        return self.call("Send", send_body(cid, data, end))

    def signal(self, cid, code):
        return self.call("Signal", signal_body(cid, code))

    def delete(self):
        return self.call("Delete")

    def run_to_done(self, cid, deadline=30):
        """Receive until Done; returns (stdout, stderr, exit code, replies).
        Time-out faults are retried, any other fault is an error."""
        out = {"stdout": b"", "stderr": b""}
        replies = []
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            r = self.receive(cid)
            replies.append(r)
            if r.status != 200:
                f = fault_of(r)
                assert f["code"] == ERROR_TIMED_OUT, r
                continue
            for s in r.doc.findall(".//rsp:Stream"):
                out[s.get("Name")] = (out.get(s.get("Name"), b"")
                                      + base64.b64decode(s.text or ""))
            st = r.doc.find(".//rsp:CommandState")
            if st is not None and st.get("State") == STATE_DONE:
                code = int(r.doc.text(".//rsp:ExitCode"))
                return out["stdout"], out["stderr"], code, replies
        raise AssertionError("command did not finish in %ss" % deadline)


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

def fault_of(reply):
    """The fields of a SOAP fault reply as a dict (resolved QNames)."""
    d = reply.doc
    fault = d.find("s:Body/s:Fault")
    assert fault is not None, "not a SOAP fault: %r" % (reply,)
    code_v = fault.find("s:Code/s:Value", NS)
    sub_v = fault.find("s:Code/s:Subcode/s:Value", NS)
    wf = fault.find("s:Detail/f:WSManFault", NS)
    msg = wf.find("f:Message", NS) if wf is not None else None
    pf = msg.find("f:ProviderFault", NS) if msg is not None else None
    return {
        "action": d.text("s:Header/a:Action", "").strip(),
        "relates_to": d.text("s:Header/a:RelatesTo"),
        "code_value": d.resolve(code_v, code_v.text) if code_v is not None
        else None,
        "subcode": d.resolve(sub_v, sub_v.text) if sub_v is not None
        else None,
        "reason": fault.findtext("s:Reason/s:Text", None, NS),
        "detail": fault.findtext("s:Detail/w:FaultDetail", None, NS),
        "code": int(wf.get("Code")) if wf is not None and wf.get("Code")
        else None,
        "machine": wf.get("Machine") if wf is not None else None,
        "message": ("".join(msg.itertext()) if msg is not None else None),
        "provider": pf.get("provider") if pf is not None else None,
    }


def assert_fault(reply, subcode, code=None, detail=None, code_value="Sender",
                 action=None, message_id=None, status=500):
    """Check a fault reply field by field (subcode as 'w:InvalidSelectors'
    with a canonical prefix)."""
    assert reply.status == status, reply
    assert "application/soap+xml" in reply.content_type, reply
    f = fault_of(reply)
    assert f["code_value"] == q("s", code_value), f
    if subcode is not None:
        prefix, local = subcode.split(":")
        assert f["subcode"] == q(prefix, local), f
    if code is not None:
        assert f["code"] == code, f
    if detail is not None:
        assert f["detail"] is not None and \
            f["detail"].strip() == FAULT_DETAIL + detail, f
    if action is not None:
        assert f["action"] == action, f
    if message_id is not None:
        assert f["relates_to"] == message_id, f
    return f


# ---------------------------------------------------------------------------
# Shape comparison
# ---------------------------------------------------------------------------

# Elements whose text legitimately differs between Windows and this server
# (GUIDs, base64 payloads, times, host names/addresses, owner names).  The
# tests check the ones that matter (RelatesTo, ShellId, CommandId, Address,
# payloads) against the request or the decoded output separately.
IGNORE_TEXT = {
    q("a", "MessageID"), q("a", "RelatesTo"), q("a", "Address"),
    q("w", "Selector"), q("rsp", "ShellId"), q("rsp", "CommandId"),
    q("rsp", "Stream"), q("rsp", "ShellRunTime"),
    q("rsp", "ShellInactivity"), q("rsp", "Owner"), q("rsp", "ClientIP"),
    q("rsp", "ProcessId"),
}
# Attributes whose value legitimately differs (ids, host names).
IGNORE_ATTR = {"CommandId", "Machine"}
# Elements whose text is a QName: compared after resolving the prefix.
QNAME_TEXT = {q("s", "Value")}
# Optional Windows header, dropped from both sides.
DROP = {q("p", "ActivityId")}


def _name(clark):
    if clark.startswith("{"):
        uri, local = clark[1:].split("}", 1)
        return "%s:%s" % (_PREFIX_OF.get(uri, "{%s}" % uri), local)
    return clark


def _children(elem):
    return [c for c in elem if isinstance(c.tag, str) and c.tag not in DROP]


def shape(doc, elem=None, ignore_text=(), ignore_attr=(), receive_order=None,
          _depth=0, _out=None):
    """The shape of an element as a list of text lines, one per element:

        <indent><prefix:local> @attr=value ... = "text"

    * Names are written with the canonical prefix of their namespace URI
      (the document's own prefixes do not matter).
    * Every attribute is listed, sorted; its value is shown except for
      IGNORE_ATTR / ``ignore_attr`` (then ``*``).
    * Text: ``= "..."`` when compared (exactly: Windows ends its messages
      with spaces), ``= *`` when ignored but non-empty, nothing when
      empty (whitespace-only counts as empty), so an element
      that should be empty and is not still shows up.  QName texts
      (s:Value) are resolved through the in-scope prefixes.
    * Children in document order; p:ActivityId is dropped.
    * rsp:ReceiveResponse: consecutive output chunks are an artefact of how
      the child wrote its output, not of the protocol, so all data Streams
      (those without End) of one Name are folded into a single line,
      listed in ``receive_order`` (the shell's OutputStreams), ahead of
      the remaining children, which keep their order.
    """
    if _out is None:
        _out = []
        elem = doc.root if elem is None else elem
    tag = elem.tag
    attrs = []
    for k in sorted(elem.attrib, key=_name):
        v = elem.attrib[k]
        if k in IGNORE_ATTR or k in ignore_attr:
            v = "*"
        attrs.append("@%s=%s" % (_name(k), v))
    raw = elem.text or ""
    text = raw.strip()
    if text:
        if tag in QNAME_TEXT:
            text = '= "%s"' % _name(doc.resolve(elem, text))
        elif tag in IGNORE_TEXT or tag in ignore_text:
            text = "= *"
        else:
            text = '= "%s"' % raw       # exact, trailing spaces included
    _out.append("  " * _depth + " ".join([_name(tag)] + attrs
                                         + ([text] if text else [])))
    kids = _children(elem)
    if tag == q("rsp", "ReceiveResponse"):
        kids = _fold_streams(doc, kids, receive_order, ignore_text,
                             ignore_attr, _depth + 1, _out)
    for c in kids:
        shape(doc, c, ignore_text, ignore_attr, receive_order, _depth + 1,
              _out)
    return _out


def _fold_streams(doc, kids, order, ignore_text, ignore_attr, depth, out):
    data = [c for c in kids if c.tag == q("rsp", "Stream")
            and c.get("End") is None]
    rest = [c for c in kids if c not in data]
    names = []
    for c in data:
        if c.get("Name") not in names:
            names.append(c.get("Name"))
    if order:
        names.sort(key=lambda n: order.index(n) if n in order else 99)
    for n in names:
        lines = None
        for c in data:
            if c.get("Name") != n:
                continue
            one = shape(doc, c, ignore_text, ignore_attr, None, depth)
            if lines is None:
                lines = one
            elif one != lines:
                lines = lines + one     # differing chunks stay visible
        out.extend(lines)
    return rest


def assert_same_shape(expected, actual, what="", **kw):
    """Compare shape(expected) with shape(actual); fail with a diff."""
    exp = shape(expected, **kw)
    act = shape(actual, **kw)
    if exp != act:
        diff = "\n".join(difflib.unified_diff(
            exp, act, "windows", "winrmd", lineterm="", n=3))
        raise AssertionError("shape differs from Windows%s:\n%s"
                             % (" (" + what + ")" if what else "", diff))


def receive_order_check(doc):
    """Windows' ReceiveResponse layout: data Streams first, then the End
    Streams, then exactly one CommandState as the last child (or none on
    an intermediate response without a state).  Returns a problem string
    or None."""
    rr = doc.find("s:Body/rsp:ReceiveResponse")
    if rr is None:
        return "no rsp:ReceiveResponse"
    kinds = []
    for c in _children(rr):
        if c.tag == q("rsp", "Stream"):
            kinds.append("end" if c.get("End") is not None else "data")
        elif c.tag == q("rsp", "CommandState"):
            kinds.append("state")
        else:
            kinds.append(c.tag)
    rank = {"data": 0, "end": 1, "state": 2}
    if any(k not in rank for k in kinds):
        return "unexpected child in ReceiveResponse: %r" % kinds
    if [rank[k] for k in kinds] != sorted(rank[k] for k in kinds):
        return "ReceiveResponse children out of order: %r" % kinds
    if kinds.count("state") > 1:
        return "more than one CommandState: %r" % kinds
    return None


# ---------------------------------------------------------------------------
# Traces
# ---------------------------------------------------------------------------

def load_trace(name):
    """The messages of a trace: list of dicts with request, response (both
    text) and the fake-transport keys (transport_error, ...)."""
    with open(TRACES / name, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["messages"]


# ---------------------------------------------------------------------------
# Raw sockets
# ---------------------------------------------------------------------------

def raw_request_bytes(wire, body, auth=True, extra=b""):
    """The bytes of a POST of body to the endpoint, for raw sockets;
    ``extra`` is inserted after the headers built here (CRLF-terminated
    header lines)."""
    if isinstance(body, str):
        body = body.encode()
    head = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
            "Content-Type: application/soap+xml;charset=UTF-8\r\n"
            "Content-Length: %d\r\n" % (wire.path, wire.host, wire.port,
                                        len(body)))
    if auth:
        head += "Authorization: %s\r\n" % wire.basic()
    return head.encode() + extra + b"\r\n" + body
