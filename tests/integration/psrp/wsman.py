"""PSRP over WS-Management shells (MS-PSRP 3.1.5.3, MS-WSMV 3.1.4).

HTTP, authentication and message encryption come from Debian's
python3-winrm (``winrm.transport.Transport``); this module builds and parses
the SOAP envelopes: Create, Receive, Command, Send, Signal, Delete,
Disconnect, Reconnect, Connect, Enumerate (shells and commands) and Get.

Every SOAP fault is raised as :class:`WSManFault` carrying the SOAP code,
subcode, reason, the WSManFault ``Code``/``Machine``/message, the
``w:FaultDetail`` URI, an ``MSFT_WmiError`` code when present, the HTTP status
and the raw XML.
"""

from __future__ import annotations

import base64
import collections
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .clixml import PSVersion
from .transport import PSRPTransport, ReceiveResult, TransportError

__all__ = [
    "NS", "WSManTransport", "WSManFault", "WSManHTTPError", "WSManAuthError",
    "parse_fault", "SignalCode", "ShellInfo", "CommandInfo",
    "ERROR_OPERATION_TIMEOUT", "ERROR_INVALID_SELECTORS",
]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "wmie": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError",
}

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
PS_RESOURCE_PREFIX = "http://schemas.microsoft.com/powershell/"
SHELL_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
COMMAND_RESOURCE = SHELL_RESOURCE + "/Command"
CONFIG_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/config"

ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
ACTION_ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
_SHELL_ACTION = SHELL_RESOURCE + "/"
ACTION_COMMAND = _SHELL_ACTION + "Command"
ACTION_SEND = _SHELL_ACTION + "Send"
ACTION_RECEIVE = _SHELL_ACTION + "Receive"
ACTION_SIGNAL = _SHELL_ACTION + "Signal"
ACTION_DISCONNECT = _SHELL_ACTION + "Disconnect"
ACTION_RECONNECT = _SHELL_ACTION + "Reconnect"
ACTION_CONNECT = _SHELL_ACTION + "Connect"

ERROR_OPERATION_TIMEOUT = 2150858793     # 0x80338029 w:TimedOut on Receive
ERROR_INVALID_SELECTORS = 2150858843     # 0x8033805B unknown shell/command


class SignalCode:
    PS_CTRL_C = "http://schemas.microsoft.com/powershell/signal/crtl_c"  # sic
    PS_CTRL_C_PYPSRP = "powershell/signal/ctrl_c"
    TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
    CTRL_C = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
    CTRL_BREAK = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break"


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class WSManHTTPError(TransportError):
    """A non-200 HTTP answer that carried no SOAP fault."""

    def __init__(self, status: int | None, body: str = "", message: str | None = None):
        super().__init__(message or "HTTP %s from the WS-Man endpoint" % status)
        self.status = status
        self.body = body


class WSManAuthError(WSManHTTPError):
    """HTTP 401: the credentials were rejected."""


class WSManFault(TransportError):
    """A SOAP fault from the server."""

    def __init__(self, *, code: str | None = None, subcode: str | None = None,
                 reason: str | None = None, wsman_code: int | None = None,
                 machine: str | None = None, message: str | None = None,
                 provider: str | None = None, provider_path: str | None = None,
                 fault_detail: str | None = None, wmi_error_code: int | None = None,
                 action: str | None = None, http_status: int | None = None,
                 raw: str = ""):
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.wsman_code = wsman_code
        self.machine = machine
        self.message = message
        self.provider = provider
        self.provider_path = provider_path
        self.fault_detail = fault_detail
        self.wmi_error_code = wmi_error_code
        self.action = action
        self.http_status = http_status
        self.raw = raw
        super().__init__(str(self))

    @property
    def subcode_local(self) -> str | None:
        """Subcode without its prefix, e.g. ``TimedOut``."""
        return self.subcode.split(":", 1)[-1] if self.subcode else None

    def __str__(self) -> str:
        text = (self.message or self.reason or "").strip()
        return "WS-Man fault %s/%s code=%s: %s" % (self.code, self.subcode,
                                                  self.wsman_code, text)


def _text(el) -> str | None:
    if el is None:
        return None
    return "".join(el.itertext())


def _decode_body(body: bytes | str | None) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    if body.startswith(b"\xff\xfe") or body.startswith(b"\xfe\xff"):
        return body.decode("utf-16")
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    return body.decode("utf-8", "replace")


def parse_fault(xml_text: str | bytes, http_status: int | None = None) -> WSManFault | None:
    """The fault in a SOAP envelope, or None when it holds none."""
    text = _decode_body(xml_text)
    try:
        root = ET.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except ET.ParseError:
        return None
    fault = root.find("s:Body/s:Fault", NS)
    if fault is None:
        return None
    wsf = fault.find("s:Detail/f:WSManFault", NS)
    wsman_code = machine = message = provider = path = None
    if wsf is not None:
        try:
            wsman_code = int(wsf.get("Code")) if wsf.get("Code") is not None else None
        except ValueError:
            wsman_code = None
        machine = wsf.get("Machine")
        msg_el = wsf.find("f:Message", NS)
        if msg_el is not None:
            pf = msg_el.find("f:ProviderFault", NS)
            if pf is not None:
                provider = pf.get("provider")
                path = pf.get("path")
            message = _text(msg_el)
    wmi = fault.find(".//wmie:MSFT_WmiError/wmie:error_Code", NS)
    wmi_code = None
    if wmi is not None and (wmi.text or "").strip().isdigit():
        wmi_code = int(wmi.text.strip())
    if wsman_code is None and wmi_code is not None:
        wsman_code = wmi_code
    action = root.find("s:Header/a:Action", NS)
    return WSManFault(
        code=(_text(fault.find("s:Code/s:Value", NS)) or "").strip() or None,
        subcode=(_text(fault.find("s:Code/s:Subcode/s:Value", NS)) or "").strip() or None,
        reason=_text(fault.find("s:Reason/s:Text", NS)),
        wsman_code=wsman_code, machine=machine, message=message, provider=provider,
        provider_path=path,
        fault_detail=(_text(fault.find("s:Detail/w:FaultDetail", NS)) or "").strip() or None,
        wmi_error_code=wmi_code, action=_text(action), http_status=http_status, raw=text)


# ---------------------------------------------------------------------------
# Parsed shell / command descriptions
# ---------------------------------------------------------------------------

@dataclass
class ShellInfo:
    """An ``rsp:Shell`` element as a dict of child element texts."""
    fields: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    def get(self, name: str, default=None):
        return self.fields.get(name, default)

    @property
    def shell_id(self) -> str | None:
        return self.fields.get("ShellId")

    @property
    def state(self) -> str | None:
        return self.fields.get("State")

    @classmethod
    def from_element(cls, el: ET.Element) -> "ShellInfo":
        return cls({c.tag.rsplit("}", 1)[-1]: (c.text or "") for c in el})


@dataclass
class CommandInfo:
    command_id: str | None
    command_line: str | None
    state: str | None
    fields: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Transport
# ---------------------------------------------------------------------------

def _xml_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _duration(seconds: float) -> str:
    if float(seconds).is_integer():
        return "PT%dS" % int(seconds)
    return "PT%.3fS" % seconds


class WSManTransport(PSRPTransport):
    """PSRP over a WS-Man shell on ``endpoint`` (e.g. http://host:5985/wsman).

    ``auth`` is python3-winrm's ``auth_method`` (basic, ntlm, kerberos,
    certificate, credssp).  ``transport_factory`` may replace the HTTP layer:
    a callable returning an object with ``send_message(xml) -> bytes|str``
    that raises ``winrm.exceptions.WinRMTransportError`` for HTTP errors.

    Several HTTP connections are used side by side (a pool-level Receive can
    be outstanding while a pipeline Receive or a Send runs); each is
    authenticated on its own.
    """

    supports_disconnect = True
    DEFAULT_MAX_ENVELOPE = 153600
    LARGE_MAX_ENVELOPE = 512000

    def __init__(self, endpoint: str, username: str | None = None,
                 password: str | None = None, *, auth: str = "basic",
                 configuration_name: str = "Microsoft.PowerShell",
                 resource_uri: str | None = None,
                 server_cert_validation: str = "ignore",
                 operation_timeout: float = 20.0, read_timeout_slack: float = 10.0,
                 max_envelope_size: int = DEFAULT_MAX_ENVELOPE,
                 auto_envelope_size: bool = True,
                 idle_timeout: float | None = None, shell_name: str | None = None,
                 shell_name_form: str = "both",
                 locale: str = "en-US", data_locale: str | None = "en-US",
                 session_id: uuid.UUID | None = None, no_profile: bool | None = None,
                 protocol_version: str = "2.3", compression: str | None = None,
                 stop_signal: str = SignalCode.PS_CTRL_C,
                 terminate_signal: str = SignalCode.TERMINATE,
                 create_options: dict | None = None,
                 transport_factory: Callable[[], Any] | None = None,
                 **transport_kwargs):
        self.endpoint = endpoint
        self.resource_uri = resource_uri or PS_RESOURCE_PREFIX + configuration_name
        self.operation_timeout = operation_timeout
        self.read_timeout_slack = read_timeout_slack
        self.auto_envelope_size = auto_envelope_size
        self.idle_timeout = idle_timeout
        self.shell_name = shell_name
        #: Where Create puts ``shell_name``: "attribute" (``rsp:Shell/@Name``,
        #: as Ruby's client does), "element" (``rsp:Name``) or "both".
        if shell_name_form not in ("attribute", "element", "both"):
            raise ValueError("shell_name_form must be attribute, element or both")
        self.shell_name_form = shell_name_form
        self.locale = locale
        self.data_locale = data_locale
        self.session_id = session_id or uuid.uuid4()
        self.no_profile = no_profile
        self.protocol_version = protocol_version
        self.compression = compression
        self.stop_signal = stop_signal
        self.terminate_signal = terminate_signal
        self.create_options = dict(create_options or {})
        #: Hooks for xpress compression of stream payloads (not implemented).
        self.compress: Callable[[bytes], bytes] | None = None
        self.decompress: Callable[[bytes], bytes] | None = None

        self.shell_id: str | None = None
        self.shell_info: ShellInfo | None = None
        self.selectors: dict[str, str] = {}
        self.command_ids: dict[uuid.UUID, str] = {}
        self.closed = False
        #: Recent exchanges: (action, request xml, response xml or fault).
        self.history: collections.deque = collections.deque(maxlen=200)
        self.stop_grace = 30.0
        #: Put CommandId on pipeline ``pr`` Sends (PowerShell does; pypsrp
        #: sends host responses shell-level, routed by the message's PID).
        self.pr_command_id = True

        if transport_factory is None:
            from winrm.transport import Transport  # python3-winrm

            def transport_factory():
                return Transport(endpoint, username=username, password=password,
                                 auth_method=auth,
                                 server_cert_validation=server_cert_validation,
                                 read_timeout_sec=operation_timeout + read_timeout_slack,
                                 **transport_kwargs)
        self._factory = transport_factory
        self._idle: list = []
        self._pool_lock = threading.Lock()
        self.max_envelope_size = max_envelope_size

    # -- sizes -------------------------------------------------------------------

    @property
    def max_envelope_size(self) -> int:
        return self._max_envelope_size

    @max_envelope_size.setter
    def max_envelope_size(self, value: int) -> None:
        self._max_envelope_size = int(value)
        # What is left for base64 after the largest envelope we send (a Send
        # or Command with one stream), with room for headers we do not count.
        overhead = len(self._envelope(ACTION_SEND, self.resource_uri, body=(
            '<rsp:Send><rsp:Stream Name="stdin" CommandId="%s"></rsp:Stream></rsp:Send>'
            % ("0" * 36)), selectors={"ShellId": "0" * 36}).encode("utf-8")) + 512
        raw = ((self._max_envelope_size - overhead) // 4) * 3
        if raw < 1024:
            raise ValueError("MaxEnvelopeSize %d is too small" % value)
        self.max_payload_size = raw
        self.max_fragment_size = raw

    def server_capability(self, protocol_version) -> None:
        if self.auto_envelope_size and protocol_version is not None and \
                PSVersion(str(protocol_version)) >= PSVersion(2, 2):
            self.max_envelope_size = max(self.max_envelope_size, self.LARGE_MAX_ENVELOPE)

    # -- envelopes -------------------------------------------------------------------

    def _envelope(self, action: str, resource_uri: str | None, *, body: str = "",
                  selectors: dict | None = None, options: list | dict | None = None,
                  timeout: float | None = None, extra_headers: str = "",
                  message_id: str | None = None) -> str:
        mid = message_id or "uuid:%s" % str(uuid.uuid4()).upper()
        h = [
            '<a:Action s:mustUnderstand="true">%s</a:Action>' % action,
            '<a:MessageID>%s</a:MessageID>' % mid,
            '<a:ReplyTo><a:Address s:mustUnderstand="true">%s</a:Address></a:ReplyTo>' % ANONYMOUS,
            '<a:To>%s</a:To>' % _xml_escape(self.endpoint),
            '<w:MaxEnvelopeSize s:mustUnderstand="true">%d</w:MaxEnvelopeSize>'
            % getattr(self, "_max_envelope_size", self.DEFAULT_MAX_ENVELOPE),
            '<w:OperationTimeout>%s</w:OperationTimeout>'
            % _duration(self.operation_timeout if timeout is None else timeout),
        ]
        if self.locale:
            h.append('<w:Locale xml:lang="%s" s:mustUnderstand="false" />' % self.locale)
        if self.data_locale:
            h.append('<p:DataLocale xml:lang="%s" s:mustUnderstand="false" />' % self.data_locale)
        h.append('<p:SessionId s:mustUnderstand="false">uuid:%s</p:SessionId>'
                 % str(self.session_id).upper())
        if resource_uri:
            h.append('<w:ResourceURI s:mustUnderstand="true">%s</w:ResourceURI>'
                     % _xml_escape(resource_uri))
        if selectors:
            h.append("<w:SelectorSet>%s</w:SelectorSet>" % "".join(
                '<w:Selector Name="%s">%s</w:Selector>' % (_xml_escape(k), _xml_escape(str(v)))
                for k, v in selectors.items()))
        if options:
            items = options.items() if isinstance(options, dict) else options
            opts = []
            for item in items:
                name, value = item[0], item[1]
                must = item[2] if len(item) > 2 else False
                opts.append('<w:Option Name="%s"%s>%s</w:Option>' % (
                    _xml_escape(name), ' MustComply="true"' if must else "",
                    _xml_escape(str(value))))
            h.append('<w:OptionSet s:mustUnderstand="true">%s</w:OptionSet>' % "".join(opts))
        h.append(extra_headers)
        return ('<s:Envelope xmlns:s="{s}" xmlns:a="{a}" xmlns:w="{w}" xmlns:p="{p}" '
                'xmlns:rsp="{rsp}"><s:Header>{h}</s:Header><s:Body>{b}</s:Body></s:Envelope>'
                ).format(h="".join(h), b=body, **NS)

    # -- HTTP --------------------------------------------------------------------------

    def _acquire(self):
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        return self._factory()

    def _release(self, conn) -> None:
        with self._pool_lock:
            self._idle.append(conn)

    def post(self, xml: str, *, timeout: float | None = None, action: str = "") -> str:
        """Send one envelope, return the response text; faults raise WSManFault."""
        try:
            from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
        except ImportError:  # pragma: no cover - factory-only use without python3-winrm
            InvalidCredentialsError = WinRMTransportError = ()
        conn = self._acquire()
        if timeout is not None and hasattr(conn, "read_timeout_sec"):
            conn.read_timeout_sec = timeout + self.read_timeout_slack
        ok = False
        try:
            try:
                body = conn.send_message(xml)
                ok = True
            except InvalidCredentialsError as e:
                ok = True
                raise WSManAuthError(401, "", str(e)) from None
            except WinRMTransportError as e:
                ok = True
                text = _decode_body(e.response_text)
                fault = parse_fault(text, e.code) if text else None
                self.history.append((action, xml, text))
                if fault is not None:
                    raise fault from None
                raise WSManHTTPError(e.code, text) from None
            except (WSManFault, WSManHTTPError):
                raise
            except Exception as e:  # requests/connection errors
                raise TransportError("%s: %s" % (type(e).__name__, e)) from e
        finally:
            if ok:
                self._release(conn)
        text = _decode_body(body)
        self.history.append((action, xml, text))
        fault = parse_fault(text, 200)
        if fault is not None:
            raise fault
        return text

    def request(self, action: str, resource_uri: str | None = None, *, body: str = "",
                selectors: dict | None = None, options=None,
                timeout: float | None = None, extra_headers: str = "") -> ET.Element:
        """Build, send and parse one WS-Man request; returns the Envelope."""
        xml = self._envelope(action, resource_uri if resource_uri is not None else self.resource_uri,
                             body=body, selectors=selectors, options=options, timeout=timeout,
                             extra_headers=extra_headers)
        text = self.post(xml, timeout=timeout if timeout is not None else self.operation_timeout,
                         action=action.rsplit("/", 1)[-1])
        try:
            return ET.fromstring(text.encode("utf-8"))
        except ET.ParseError as e:
            raise TransportError("unparsable response to %s: %s" % (action, e)) from None

    def _shell_selectors(self) -> dict:
        if self.shell_id is None:
            raise TransportError("no shell has been created")
        return dict(self.selectors) if self.selectors else {"ShellId": self.shell_id}

    def _command_id(self, pid: uuid.UUID) -> str:
        return self.command_ids.get(pid) or str(pid).upper()

    # -- PSRPTransport -------------------------------------------------------------------

    def open_pool(self, rpid: uuid.UUID, payload: bytes) -> None:
        shell_id = str(rpid).upper()
        name_attr = self.shell_name and self.shell_name_form in ("attribute", "both")
        name_elem = self.shell_name and self.shell_name_form in ("element", "both")
        parts = ['<rsp:Shell ShellId="%s"%s>' % (
            shell_id, ' Name="%s"' % _xml_escape(self.shell_name) if name_attr else "")]
        if name_elem:
            parts.append("<rsp:Name>%s</rsp:Name>" % _xml_escape(self.shell_name))
        parts.append("<rsp:InputStreams>stdin pr</rsp:InputStreams>"
                     "<rsp:OutputStreams>stdout</rsp:OutputStreams>")
        if self.idle_timeout is not None:
            parts.append("<rsp:IdleTimeOut>%s</rsp:IdleTimeOut>" % _duration(self.idle_timeout))
        parts.append('<creationXml xmlns="%s">%s</creationXml></rsp:Shell>'
                     % (NS["pwsh"], base64.b64encode(payload).decode("ascii")))
        options = [("protocolversion", self.protocol_version, True)]
        if self.no_profile is not None:
            options.append(("WINRS_NOPROFILE", "TRUE" if self.no_profile else "FALSE", True))
        for k, v in self.create_options.items():
            options.append((k, v) if not isinstance(v, tuple) else (k, *v))
        extra = ""
        if self.compression:
            extra = ('<rsp:CompressionType s:mustUnderstand="true">%s</rsp:CompressionType>'
                     % _xml_escape(self.compression))
        root = self.request(ACTION_CREATE, body="".join(parts), options=options,
                            extra_headers=extra)
        body = root.find("s:Body", NS)
        sel_set = body.find("x:ResourceCreated/a:ReferenceParameters/w:SelectorSet", NS)
        self.selectors = {}
        if sel_set is not None:
            for sel in sel_set.findall("w:Selector", NS):
                self.selectors[sel.get("Name")] = (sel.text or "").strip()
        shell_el = body.find("rsp:Shell", NS)
        if shell_el is not None:
            self.shell_info = ShellInfo.from_element(shell_el)
        self.shell_id = (self.selectors.get("ShellId")
                         or (self.shell_info.shell_id if self.shell_info else None)
                         or shell_id)

    def send(self, pid: uuid.UUID | None, payload: bytes, *, stream: str = "stdin") -> None:
        self.send_streams([(stream, pid, payload, False)])

    def send_streams(self, streams: Iterable[tuple], command_id: str | None = None) -> None:
        """One Send carrying several ``(name, pid, payload, end)`` streams."""
        parts = []
        for name, pid, payload, end in streams:
            if self.compress is not None:
                payload = self.compress(payload)
            attrs = ' Name="%s"' % name
            cid = command_id
            if pid is not None and (name != "pr" or self.pr_command_id):
                cid = self._command_id(pid)
            if cid:
                attrs += ' CommandId="%s"' % cid
            if end:
                attrs += ' End="true"'
            parts.append("<rsp:Stream%s>%s</rsp:Stream>"
                         % (attrs, base64.b64encode(payload).decode("ascii")))
        self.request(ACTION_SEND, body="<rsp:Send>%s</rsp:Send>" % "".join(parts),
                     selectors=self._shell_selectors())

    def create_pipeline(self, pid: uuid.UUID, payload: bytes, command: str = "") -> None:
        cid = str(pid).upper()
        body = ('<rsp:CommandLine CommandId="%s">%s<rsp:Arguments>%s</rsp:Arguments>'
                '</rsp:CommandLine>' % (cid, "<rsp:Command>%s</rsp:Command>" % _xml_escape(command)
                                        if command else "<rsp:Command />",
                                        base64.b64encode(payload).decode("ascii")))
        root = self.request(ACTION_COMMAND, body=body, selectors=self._shell_selectors())
        got = root.find("s:Body/rsp:CommandResponse/rsp:CommandId", NS)
        self.command_ids[pid] = (got.text or "").strip() if got is not None and got.text else cid

    def receive(self, pid: uuid.UUID | None, timeout: float | None = None) -> ReceiveResult:
        timeout = self.operation_timeout if timeout is None else max(1.0, float(timeout))
        attr = ' CommandId="%s"' % self._command_id(pid) if pid is not None else ""
        body = ('<rsp:Receive><rsp:DesiredStream%s>stdout</rsp:DesiredStream></rsp:Receive>'
                % attr)
        try:
            root = self.request(ACTION_RECEIVE, body=body, selectors=self._shell_selectors(),
                                options=[("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "True")],
                                timeout=timeout)
        except WSManFault as f:
            if f.wsman_code == ERROR_OPERATION_TIMEOUT:
                return ReceiveResult([])
            raise
        return self.parse_receive(root)

    def parse_receive(self, root: ET.Element) -> ReceiveResult:
        res = ReceiveResult([])
        resp = root.find("s:Body/rsp:ReceiveResponse", NS)
        if resp is None:
            raise TransportError("ReceiveResponse missing from the answer")
        for st in resp.findall("rsp:Stream", NS):
            data = (st.text or "").strip()
            if data:
                raw = base64.b64decode(data)
                if self.decompress is not None:
                    raw = self.decompress(raw)
                res.payloads.append(raw)
        cs = resp.find("rsp:CommandState", NS)
        if cs is not None:
            res.command_state = (cs.get("State") or "").rsplit("/", 1)[-1]
            ec = cs.find("rsp:ExitCode", NS)
            if ec is not None and (ec.text or "").strip().lstrip("-").isdigit():
                res.exit_code = int(ec.text.strip())
        return res

    def signal(self, pid: uuid.UUID | None, code: str) -> None:
        attr = ' CommandId="%s"' % self._command_id(pid) if pid is not None else ""
        self.request(ACTION_SIGNAL, body='<rsp:Signal%s><rsp:Code>%s</rsp:Code></rsp:Signal>'
                     % (attr, _xml_escape(code)), selectors=self._shell_selectors())

    def stop_pipeline(self, pid: uuid.UUID) -> None:
        self.signal(pid, self.stop_signal)

    def close_pipeline(self, pid: uuid.UUID) -> None:
        if self.closed or self.shell_id is None:
            return
        self.signal(pid, self.terminate_signal)

    def close_pool(self, timeout: float | None = None) -> None:
        if self.closed or self.shell_id is None:
            self.closed = True
            return
        try:
            self.request(ACTION_DELETE, selectors=self._shell_selectors(), timeout=timeout)
        finally:
            self.closed = True

    # -- disconnected operation ------------------------------------------------------

    def disconnect(self, idle_timeout: float | None = None, buffer_mode: str | None = None,
                   **_ignored) -> None:
        inner = ""
        if idle_timeout is not None:
            inner += "<rsp:IdleTimeOut>%s</rsp:IdleTimeOut>" % _duration(idle_timeout)
        if buffer_mode is not None:
            inner += "<rsp:BufferMode>%s</rsp:BufferMode>" % _xml_escape(buffer_mode)
        body = "<rsp:Disconnect>%s</rsp:Disconnect>" % inner if inner else "<rsp:Disconnect />"
        self.request(ACTION_DISCONNECT, body=body, selectors=self._shell_selectors())

    def reconnect(self, pid: uuid.UUID | None = None, **_ignored) -> None:
        body = "" if pid is None else '<rsp:Reconnect CommandId="%s" />' % self._command_id(pid)
        self.request(ACTION_RECONNECT, body=body, selectors=self._shell_selectors())

    def connect(self, rpid: uuid.UUID, payload: bytes) -> bytes:
        """Shell-level Connect; returns the decoded connectResponseXml bytes."""
        if self.shell_id is None:
            self.shell_id = str(rpid).upper()
        body = ('<rsp:Connect><connectXml xmlns="%s">%s</connectXml></rsp:Connect>'
                % (NS["pwsh"], base64.b64encode(payload).decode("ascii")))
        root = self.request(ACTION_CONNECT, body=body, selectors=self._shell_selectors(),
                            options=[("protocolversion", self.protocol_version, True)])
        el = root.find("s:Body/rsp:ConnectResponse/pwsh:connectResponseXml", NS)
        if el is None or not (el.text or "").strip():
            raise TransportError("ConnectResponse without connectResponseXml")
        return base64.b64decode(el.text.strip())

    def connect_pipeline(self, pid: uuid.UUID, command_id: str | None = None) -> None:
        cid = command_id or self._command_id(pid)
        self.command_ids[pid] = cid
        self.request(ACTION_CONNECT, body='<rsp:Connect CommandId="%s" />' % cid,
                     selectors=self._shell_selectors())

    # -- enumeration / get -------------------------------------------------------------

    def _enumerate(self, resource_uri: str, filter_xml: str = "") -> list[ET.Element]:
        body = ('<n:Enumerate xmlns:n="%s"><w:OptimizeEnumeration />'
                '<w:MaxElements>32000</w:MaxElements>%s</n:Enumerate>' % (NS["n"], filter_xml))
        root = self.request(ACTION_ENUMERATE, resource_uri, body=body)
        resp = root.find("s:Body/n:EnumerateResponse", NS)
        if resp is None:
            raise TransportError("EnumerateResponse missing")
        items = resp.find("w:Items", NS)
        if items is None:
            items = resp.find("n:Items", NS)
        return list(items) if items is not None else []

    def enumerate_shells(self) -> list[ShellInfo]:
        return [ShellInfo.from_element(el) for el in self._enumerate(SHELL_RESOURCE)
                if el.tag == "{%s}Shell" % NS["rsp"]]

    def enumerate_commands(self, shell_id: str | None = None) -> list[CommandInfo]:
        sid = shell_id or self.shell_id
        flt = ('<w:Filter Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter">'
               '<w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet>'
               '</w:Filter>' % _xml_escape(sid))
        out = []
        for el in self._enumerate(COMMAND_RESOURCE, flt):
            fields = {c.tag.rsplit("}", 1)[-1]: (c.text or "") for c in el}
            out.append(CommandInfo(fields.get("CommandId"), fields.get("CommandLine"),
                                   fields.get("CommandState"), fields))
        return out

    def get_shell(self, shell_id: str | None = None) -> ShellInfo:
        root = self.request(ACTION_GET, SHELL_RESOURCE,
                            selectors={"ShellId": shell_id or self.shell_id})
        el = root.find("s:Body/rsp:Shell", NS)
        if el is None:
            raise TransportError("Get response holds no rsp:Shell")
        return ShellInfo.from_element(el)

    def get_config(self) -> ET.Element:
        root = self.request(ACTION_GET, CONFIG_RESOURCE)
        return root.find("s:Body", NS)

    def close(self) -> None:
        with self._pool_lock:
            conns, self._idle = self._idle, []
        for c in conns:
            sess = getattr(c, "session", None)
            if sess is not None:
                try:
                    sess.close()
                except Exception:
                    pass
