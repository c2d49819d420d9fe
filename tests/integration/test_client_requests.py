"""Real clients' first requests (tests/data/client-requests) replayed.

Every recorded request is sent to the lab daemon with its own headers and
body, and the requests of one run that shared a TCP connection share one
here too.  Only these values change: ``Host`` and the envelope's
``a:To`` name the lab endpoint, Basic credentials are the lab's (after the
recorded ``vagrant`` credentials have first been refused), and
``Content-Length`` follows the body.

What each request must get (the project's WinRM protocol brief, §1.3,
§1.4, §4.1, §5; cited as "brief §N" below):

* Basic with the lab's credentials: an answer that parses as SOAP 1.2, has
  an ``application/soap+xml`` Content-Type and ``a:RelatesTo`` equal to the
  request's MessageID byte for byte; a cmd Create gets 200 and a
  CreateResponse; a PSRP Create gets a CreateResponse or, without pwsh, a
  clean 500 fault; Go winrm's Command and Delete without a SelectorSet get
  500 ``w:InvalidSelectors``.
* The recorded ``vagrant`` credentials: 401.
* Requests without credentials, or relying on a connection that was
  authenticated in the recording: 401 with an empty body and one
  ``WWW-Authenticate`` line per scheme, Basic among them, and the
  connection kept open.
* An NTLM NEGOTIATE_MESSAGE (raw or in SPNEGO) for a scheme the daemon
  offers: a 401 continuation with one ``WWW-Authenticate`` line carrying a
  CHALLENGE_MESSAGE in the same wrapping.  The recorded AUTHENTICATE
  messages answer another server's challenge for an account the lab does
  not have, and CredSSP is not enabled in the lab: those legs get a fresh
  initial challenge, never a 5xx.
* Sealed bodies (multipart/encrypted) on a connection without a security
  context: 401 or 400, never a 5xx.
* The unauthenticated Identify: 200 and an IdentifyResponse without
  SecurityProfiles.
"""
import base64
import collections
import re
import struct

import pytest

from wsman_raw import (CLIENT_REQUESTS, NS, Shell, Wire, assert_fault,
                       envelope, parse, q)

SCHEME_RE = re.compile(r"^(Negotiate|Kerberos|Basic|CredSSP|NTLM)( .*)?$")


class Recorded:
    """One request of tests/data/client-requests."""

    def __init__(self, path):
        self.name = path.name
        data = path.read_bytes()
        lines = data.split(b"\n")
        notes = []
        while lines[0].startswith(b"# "):
            notes.append(lines.pop(0)[2:].decode())
        self.notes = notes
        self.connection = next((n.split(" ", 2)[2] for n in notes
                                if n.startswith("TCP connection ")), None)
        self.method, self.path, _ = lines.pop(0).decode().split(" ", 2)
        self.headers = []
        while lines[0] != b"":
            k, v = lines.pop(0).decode().split(":", 1)
            self.headers.append((k, v.strip()))
        lines.pop(0)
        rest = b"\n".join(lines)
        cut = rest.find(b"\n# ---- ")
        if cut >= 0:
            rest = rest[:cut + 1]
        length = int(self.header("Content-Length") or 0)
        if rest.startswith(b"<empty body>"):
            body = b""
        elif re.search(rb"\n<\d+ bytes of binary", rest):
            head, tail = re.split(rb"<\d+ bytes of binary[^\n]*\n", rest, 1)
            b64 = tail.split(b"--Encrypted Boundary--")[0]
            body = (head + base64.b64decode(b"".join(b64.split()))
                    + b"--Encrypted Boundary--\r\n")
        else:
            body = rest[:length]
        assert len(body) == length, (self.name, len(body), length)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def auth_scheme(self):
        a = self.header("Authorization")
        return a.split(" ", 1)[0] if a else None

    @property
    def sealed(self):
        return (self.header("Content-Type") or "").startswith(
            "multipart/encrypted")

    @property
    def https(self):
        return "-https-" in self.name

    @property
    def message_id(self):
        m = re.search(rb"<(?:\w+:)?MessageID>([^<]*)</", self.body)
        return m.group(1).decode() if m else None

    def send(self, wire, conn, authorization="keep"):
        """Send over http.client connection conn; returns a Reply."""
        body = self.body
        if not self.sealed and body:
            body = re.sub(rb"(<(\w+:)?To>)[^<]*(</(\w+:)?To>)",
                          lambda m: m.group(1) + wire.url.encode()
                          + m.group(3), body)
        headers = {}
        for k, v in self.headers:
            if k.lower() in ("host", "content-length"):
                continue
            if k.lower() == "authorization" and authorization != "keep":
                v = authorization
            headers[k] = v
        ct = headers.pop("Content-Type", None)
        auth = headers.pop("Authorization", False)
        if body or self.header("Content-Length") is not None:
            headers["Content-Length"] = str(len(body))
        return wire.request(body, headers=headers, auth=auth or False,
                            content_type=ct, conn=conn,
                            method=self.method, path=self.path)


def runs():
    """Recorded requests grouped by run, in order."""
    groups = collections.OrderedDict()
    for p in sorted(CLIENT_REQUESTS.glob("*.txt")):
        run = re.sub(r"-\d+\.txt$", "", p.name)
        groups.setdefault(run, []).append(Recorded(p))
    return groups


RUNS = runs()


def check_401(r, what):
    """A clean initial authentication challenge (brief §1.3, §1.4.2):
    empty body, one WWW-Authenticate line per scheme, none carrying a
    token, Basic among them (the lab enables it), connection kept."""
    assert r.status == 401, (what, r)
    assert r.raw == b"", (what, "401 with a body", r.raw[:200])
    lines = r.header_lines("WWW-Authenticate")
    assert lines, (what, "401 without WWW-Authenticate")
    for v in lines:
        # One scheme per header line: go-ntlmssp matches each line alone.
        assert SCHEME_RE.match(v), (what, lines)
        assert v == "Basic" or v.startswith("Basic realm=") or \
            " " not in v, (what, "token in an initial challenge", lines)
    assert any(v.split(" ", 1)[0] == "Basic" for v in lines), (what, lines)
    # The connection stays usable for the next leg (brief §1.4.3).
    assert not r.will_close, (what, "401 closed the connection")
    return [v.split(" ", 1)[0] for v in lines]


def ntlm_message_type(token):
    """The NTLM message type inside a raw or SPNEGO-wrapped token."""
    i = token.find(b"NTLMSSP\0")
    if i < 0:
        return None
    return struct.unpack("<I", token[i + 8:i + 12])[0]


def check_auth_leg(r, req, offered, what):
    """An answer to a recorded NTLM/Negotiate/CredSSP leg (brief §1.4.2).
    A NEGOTIATE_MESSAGE for an offered scheme gets a continuation: a single
    WWW-Authenticate line with the client's scheme and a CHALLENGE_MESSAGE
    in the client's wrapping (raw NTLMSSP for raw, SPNEGO for SPNEGO).
    Anything else fails authentication here (the recorded AUTHENTICATE
    answers another server's challenge for an account the lab does not
    have; CredSSP is not enabled): a fresh initial challenge."""
    scheme, _, b64 = req.header("Authorization").partition(" ")
    token = base64.b64decode(b64) if b64 else b""
    if scheme in offered and ntlm_message_type(token) == 1:
        assert r.status == 401, (what, r)
        assert r.raw == b"", (what, r.raw[:200])
        assert not r.will_close, (what, "401 closed the connection")
        lines = r.header_lines("WWW-Authenticate")
        assert len(lines) == 1, (what, lines)
        got_scheme, _, got = lines[0].partition(" ")
        assert got_scheme == scheme and got, (what, lines)
        reply = base64.b64decode(got)
        assert ntlm_message_type(reply) == 2, (what, reply[:64])
        assert reply.startswith(b"NTLMSSP\0") == \
            token.startswith(b"NTLMSSP\0"), (what, reply[:16], token[:16])
    elif scheme == "CredSSP" and scheme in offered and \
            token.startswith(b"\x16\x03"):
        # The ClientHello of the inner TLS handshake: the server's flight
        # comes back in a single CredSSP line.
        assert r.status == 401, (what, r)
        lines = r.header_lines("WWW-Authenticate")
        assert len(lines) == 1 and lines[0].startswith("CredSSP "), \
            (what, lines)
        assert base64.b64decode(lines[0][8:]).startswith(b"\x16\x03"), \
            (what, lines)
    else:
        check_401(r, what)


def check_soap(r, req, what):
    assert r.status in (200, 500), (what, r)
    assert "application/soap+xml" in r.content_type, (what, r)
    doc = r.doc
    assert doc.root.tag == q("s", "Envelope"), (what, r)
    assert doc.text("s:Header/a:RelatesTo") == req.message_id, \
        (what, doc.text("s:Header/a:RelatesTo"), req.message_id)
    return doc


def delete_shell(wire, doc, resource_uri):
    sid = doc.text(".//w:Selector[@Name='ShellId']")
    env, _ = envelope("Delete", resource_uri=resource_uri,
                      selectors={"ShellId": sid}, to=wire.url)
    assert wire.soap(env).status == 200


@pytest.mark.parametrize("run", list(RUNS))
def test_replay(lab, run):
    reqs = RUNS[run]
    conns = {}
    # The schemes the daemon offers, from a request without credentials.
    offered = check_401(Wire(lab).request(b"", auth=False), "no credentials")
    for req in reqs:
        wire = Wire(lab, https=req.https)
        key = req.connection or req.name
        if key not in conns:
            conns[key] = wire.connection()
        conn = conns[key]
        what = req.name
        scheme = req.auth_scheme
        if scheme == "Basic":
            # The recorded account does not exist here: refused.
            check_401(req.send(wire, conn), what + " (recorded account)")
            r = req.send(wire, conn, authorization=wire.basic())
            doc = check_soap(r, req, what)
            rdoc = parse(req.body)
            action = rdoc.text(".//{%s}Action" % NS["a"]).strip()
            uri = rdoc.text(".//{%s}ResourceURI" % NS["w"]).strip()
            has_selector = rdoc.find(".//{%s}SelectorSet" % NS["w"]) \
                is not None
            if action.endswith("/Create") and uri.endswith("/shell/cmd"):
                assert r.status == 200, (what, r)
                assert doc.text("s:Header/a:Action") == \
                    "http://schemas.xmlsoap.org/ws/2004/09/transfer/" \
                    "CreateResponse"
                delete_shell(wire, doc, uri)
            elif action.endswith("/Create"):
                # PSRP: a shell when pwsh is there, else a clean fault.
                if r.status == 200:
                    assert doc.find(".//x:ResourceCreated") is not None
                    delete_shell(wire, doc, uri)
                else:
                    assert r.is_fault, (what, r)
            elif not has_selector:
                # Go winrm's Command/Delete without a SelectorSet.
                # brief §5.4: InsufficientSelectors, 2150858813.
                assert_fault(r, "w:InvalidSelectors", code=2150858813,
                             detail="InsufficientSelectors",
                             message_id=req.message_id)
            else:
                raise AssertionError("no expectation for " + what)
        elif req.method == "POST" and req.header("WSMANIDENTIFY"):
            r = req.send(wire, conn)
            assert r.status == 200, (what, r)
            assert "application/soap+xml" in r.content_type, r
            ir = r.doc.find("s:Body/wsmid:IdentifyResponse")
            assert ir is not None, (what, r)
            assert ir.find("wsmid:ProtocolVersion", NS) is not None
            assert ir.find("wsmid:SecurityProfiles", NS) is None, r
        elif req.sealed:
            r = req.send(wire, conn)
            assert r.status in (400, 401), (what, r)
            if r.status == 401:
                check_401(r, what)
        elif scheme is not None:
            # NTLM / Negotiate / CredSSP legs.
            check_auth_leg(req.send(wire, conn), req, offered, what)
        else:
            # No credentials at all.
            check_401(req.send(wire, conn), what)
    for c in conns.values():
        c.close()
    assert lab.proc.poll() is None, "daemon died"


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_go_winrm_command_and_delete_with_real_shell(lab, https):
    """Go winrm's own Command and Delete envelopes (CDATA command line,
    newlines between elements, unprefixed mustUnderstand) work once they
    name a real shell: the ShellId of a shell created through Go's own
    Create is added as the SelectorSet Go sends in a normal run."""
    name = "go-winrm-basic-%s" % ("https" if https else "http")
    create, command, delete = RUNS[name]
    wire = Wire(lab, https=https)
    conn = wire.connection()
    r = create.send(wire, conn, authorization=wire.basic())
    doc = check_soap(r, create, create.name)
    assert r.status == 200, r
    sid = doc.text(".//w:Selector[@Name='ShellId']")
    sel = ('<w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector>'
           "</w:SelectorSet>\n</env:Header>" % sid).encode()
    for req in (command, delete):
        req.body = req.body.replace(b"</env:Header>", sel, 1)
    r = command.send(wire, conn, authorization=wire.basic())
    doc = check_soap(r, command, command.name)
    assert r.status == 200, r
    # Go compares the Action exactly (brief §4.5).
    assert doc.text("s:Header/a:Action") == \
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/" \
        "CommandResponse"
    shell = Shell.__new__(Shell)
    shell.wire, shell.timeout, shell.id = wire, "PT20S", sid
    out, err, code, _ = shell.run_to_done(doc.text(".//rsp:CommandId"))
    assert (out, err, code) == (b"hello\n", b"", 0)
    r = delete.send(wire, conn, authorization=wire.basic())
    check_soap(r, delete, delete.name)
    assert r.status == 200, r
    conn.close()
