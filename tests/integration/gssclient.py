"""A WinRM HTTP client that authenticates with GSSAPI (python3-gssapi:
Kerberos, SPNEGO, or NTLM through gss-ntlmssp) and seals its messages the
way Windows clients do (MS-WSMV 2.2.9.1): Kerberos with the header-only
wrap_iov layout, NTLM with its 16-byte signature in front.

Debian's pywinrm 0.3.0 cannot seal Kerberos messages and no client in
Debian sends channel bindings, so the tests use this one for those paths;
pywinrm (requests-ntlm) covers NTLM sealing with an independent
implementation.

``GSSTransport(url, ...).send_message(xml)`` mirrors pywinrm's Transport
(returns the response body, raises winrm.exceptions errors), so the PSRP
test client can run over it.
"""
import base64
import hashlib
import http.client
import re
import ssl
import struct
import urllib.parse

import gssapi
import gssapi.raw as graw
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError

KRB5 = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2")
SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
NTLM = gssapi.OID.from_int_seq("1.3.6.1.4.1.311.2.2.10")

PROTOCOLS = {
    "Negotiate": "application/HTTP-SPNEGO-session-encrypted",
    "Kerberos": "application/HTTP-Kerberos-session-encrypted",
}


def server_end_point(der_cert):
    """tls-server-end-point channel binding data (RFC 5929)."""
    return b"tls-server-end-point:" + hashlib.sha256(der_cert).digest()


class GSSTransport:
    def __init__(self, url, *, mech="krb5", scheme="Negotiate",
                 user=None, password=None, service="HTTP",
                 hostname=None, seal=True, ca_file=None,
                 send_cbt=True, wrong_cbt=False, timeout=60):
        self.url = urllib.parse.urlsplit(url)
        self.scheme = scheme
        self.mech = {"krb5": KRB5, "spnego": SPNEGO, "ntlm": NTLM}[mech]
        self.user, self.password = user, password
        self.target = gssapi.Name(
            f"{service}@{hostname or self.url.hostname}",
            gssapi.NameType.hostbased_service)
        self.seal = seal
        self.ca_file = ca_file
        self.send_cbt, self.wrong_cbt = send_cbt, wrong_cbt
        self.timeout = timeout
        self.conn = None
        self.ctx = None
        self.last_status = None
        self.last_headers = None

    # -- connection and handshake -------------------------------------

    def _connect(self):
        if self.url.scheme == "https":
            sslctx = ssl.create_default_context(cafile=self.ca_file)
            sslctx.check_hostname = False
            self.conn = http.client.HTTPSConnection(
                self.url.hostname, self.url.port, context=sslctx,
                timeout=self.timeout)
        else:
            self.conn = http.client.HTTPConnection(
                self.url.hostname, self.url.port, timeout=self.timeout)
        self.conn.connect()

    def _bindings(self):
        if self.url.scheme != "https" or not self.send_cbt:
            return None
        der = self.conn.sock.getpeercert(binary_form=True)
        data = server_end_point(der)
        if self.wrong_cbt:
            data = data[:-1] + bytes([data[-1] ^ 0xff])
        return gssapi.raw.ChannelBindings(application_data=data)

    def _creds(self):
        if self.mech == NTLM or (self.password is not None and
                                 self.mech != KRB5):
            name = gssapi.Name(self.user, gssapi.NameType.user)
            return graw.acquire_cred_with_password(
                name, self.password.encode(), usage="initiate",
                mechs=[self.mech]).creds
        return None

    def _request(self, body, headers):
        headers = dict(headers)
        headers["Content-Length"] = str(len(body))
        self.conn.request("POST", self.url.path or "/wsman", body, headers)
        resp = self.conn.getresponse()
        data = resp.read()
        self.last_status, self.last_headers = resp.status, resp.headers
        return resp, data

    def _handshake(self):
        self._connect()
        self.ctx = gssapi.SecurityContext(
            name=self.target, mech=self.mech, creds=self._creds(),
            usage="initiate", channel_bindings=self._bindings(),
            flags=gssapi.RequirementFlag.integrity |
            gssapi.RequirementFlag.confidentiality |
            gssapi.RequirementFlag.mutual_authentication)
        token = self.ctx.step()
        while True:
            resp, _ = self._request(b"", {
                "Authorization": f"{self.scheme} "
                + base64.b64encode(token).decode()})
            value = resp.getheader("WWW-Authenticate") or ""
            m = re.search(re.escape(self.scheme) + r" ([A-Za-z0-9+/=]+)",
                          value)
            if resp.status == 200:
                if m and not self.ctx.complete:
                    self.ctx.step(base64.b64decode(m.group(1)))
                if not self.ctx.complete:
                    raise InvalidCredentialsError(
                        "200 without the final token (mutual auth)")
                return
            if resp.status != 401 or not m:
                raise InvalidCredentialsError(
                    f"authentication failed: HTTP {resp.status}")
            token = self.ctx.step(base64.b64decode(m.group(1)))

    # -- sealing ----------------------------------------------------------

    def _wrap(self, plain):
        if self.mech == NTLM:
            out = self.ctx.wrap(plain, True).message
            return out[:16], out[16:]
        iov = graw.IOV(graw.IOVBufferType.header, plain,
                       graw.IOVBufferType.padding, std_layout=False)
        graw.wrap_iov(self.ctx, iov, confidential=True)
        return iov[0].value, iov[1].value + (iov[2].value or b"")

    def _unwrap(self, sig, data):
        if self.mech == NTLM:
            return self.ctx.unwrap(sig + data).message
        iov = graw.IOV((graw.IOVBufferType.header, False, sig), data,
                       (graw.IOVBufferType.data, False, b""),
                       std_layout=False)
        graw.unwrap_iov(self.ctx, iov)
        return iov[1].value

    def _seal_body(self, plain):
        sig, data = self._wrap(plain)
        proto = PROTOCOLS[self.scheme]
        body = (b"--Encrypted Boundary\r\n"
                b"\tContent-Type: " + proto.encode() + b"\r\n"
                b"\tOriginalContent: type=application/soap+xml;"
                b"charset=UTF-8;Length=" + str(len(plain)).encode() + b"\r\n"
                b"--Encrypted Boundary\r\n"
                b"\tContent-Type: application/octet-stream\r\n"
                + struct.pack("<I", len(sig)) + sig + data
                + b"--Encrypted Boundary--\r\n")
        ctype = (f'multipart/encrypted;protocol="{proto}";'
                 'boundary="Encrypted Boundary"')
        return body, ctype

    def _unseal_body(self, body, ctype):
        proto = PROTOCOLS[self.scheme]
        if f'protocol="{proto}"' not in ctype:
            raise WinRMTransportError("http", 500, "response not sealed "
                                      f"with {proto}: {ctype}")
        length = int(re.search(rb"Length=(\d+)", body).group(1))
        marker = b"\tContent-Type: application/octet-stream\r\n"
        pos = body.index(marker) + len(marker)
        siglen = struct.unpack_from("<I", body, pos)[0]
        sig = body[pos + 4:pos + 4 + siglen]
        end = body.rindex(b"--Encrypted Boundary--")
        data = body[pos + 4 + siglen:end]
        plain = self._unwrap(sig, data)
        if len(plain) != length:
            raise WinRMTransportError("http", 500, "sealed length mismatch")
        return plain

    # -- the pywinrm-like interface ----------------------------------------

    def send_message(self, message):
        if isinstance(message, str):
            message = message.encode("utf-8")
        if self.ctx is None or self.conn is None:
            self._handshake()
        if self.seal:
            body, ctype = self._seal_body(message)
        else:
            body, ctype = message, "application/soap+xml;charset=UTF-8"
        resp, data = self._request(body, {"Content-Type": ctype})
        if resp.status == 401:
            raise InvalidCredentialsError("the server refused the request "
                                          "(401)")
        rtype = resp.getheader("Content-Type") or ""
        if data and rtype.startswith("multipart/encrypted"):
            data = self._unseal_body(data, rtype)
        elif data and self.seal:
            raise WinRMTransportError("http", resp.status,
                                      "answer to a sealed request was not "
                                      "sealed")
        if resp.status != 200:
            raise WinRMTransportError("http", resp.status,
                                      data.decode("utf-8", "replace"))
        return data

    def close(self):
        if self.conn is not None:
            self.conn.close()
