"""Offline tests of the test-side PSRP client (tests/integration/psrp).

Framing, CLIXML and message builders are checked against fixed vectors and
round trips; the parsers and the WS-Man transport are checked against the
real Windows exchanges recorded in fixtures/windows-traces (responses are
decoded down to PSRP messages; whole client flows are replayed against them).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import http.server
import os
import pathlib
import random
import re
import sys
import threading
import uuid
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psrp  # noqa: E402
from psrp import clixml, messages as msgs  # noqa: E402
from psrp.fragments import (Defragmenter, Fragment, FragmentError, Fragmenter,  # noqa: E402
                            Message, MessageType, NIL_UUID, unpack_fragments)

HERE = pathlib.Path(__file__).resolve().parent


# ---------------------------------------------------------------------------
# Windows trace loading
# ---------------------------------------------------------------------------

def _trace_dir() -> pathlib.Path | None:
    """The windows-traces directory: under $WINRMD_FIXTURES (as conftest.py
    uses it), the repository's tests/data, or the shared fixtures next to
    the source tree."""
    srcdir = HERE.parent.parent
    candidates = [os.environ.get("WINRMD_FIXTURES"), str(srcdir / "tests" / "data"),
                  str(srcdir.parent / "shared" / "fixtures")]
    for c in candidates:
        if c and pathlib.Path(c, "windows-traces", "test_psrp_multiple_invocations.yml").is_file():
            return pathlib.Path(c, "windows-traces")
    return None


TRACE_DIR = _trace_dir()
needs_traces = pytest.mark.skipif(TRACE_DIR is None, reason="Windows traces not found")


class Exchange:
    def __init__(self, request: str):
        self.request = request
        self.response: str | None = None
        self.status: int | None = None
        self.http_error = False

    @property
    def action(self) -> str:
        return _action(self.request)


def _action(xml: str) -> str:
    m = re.search(r"Action[^>]*>([^<]*)<", xml)
    return m.group(1) if m else ""


def _scalar(text: str) -> str:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    return text


def load_trace(name: str) -> list[Exchange]:
    """The exchanges of one trace file.

    The files are YAML, but only this shape is used: ``- request: <xml>``
    then ``  response: <xml>`` (plain or single-quoted scalars, possibly
    folded over indented continuation lines) and optional keys
    ``transport_error`` (with ``code``), ``http_error``, ``timeout``.
    """
    out: list[Exchange] = []
    key = None
    parts: list[str] = []

    def flush():
        if key in ("request", "response") and parts:
            value = _scalar(" ".join(parts))
            if key == "request":
                out.append(Exchange(value))
            else:
                out[-1].response = None if value in ("null", "~", "") else value

    for raw in (TRACE_DIR / name).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#") or raw == "messages:":
            continue
        m = re.match(r"^(- |  )(request|response|transport_error|http_error|timeout|"
                     r"overrides|auth_error):(.*)$", raw)
        if m:
            flush()
            key, parts = m.group(2), [m.group(3)]
            if key == "http_error" and out:
                out[-1].http_error = m.group(3).strip().lower() in ("yes", "true")
            continue
        m = re.match(r"^\s+code:\s*(\d+)", raw)
        if m and key == "transport_error":
            out[-1].status = int(m.group(1))
            continue
        if key in ("request", "response"):
            parts.append(raw.strip())
    flush()
    return out


def psrp_trace_files() -> list[str]:
    """Trace files whose shells are PowerShell (PSRP) shells."""
    if TRACE_DIR is None:
        return []
    return sorted(p.name for p in TRACE_DIR.glob("test_*.yml")
                  if "<wsman:ResourceURI s:mustUnderstand=\"true\">http://schemas.microsoft.com/"
                     "powershell/" in p.read_text(encoding="utf-8"))


NS = psrp.wsman.NS
_PAYLOAD_TAGS = ("{%s}creationXml" % NS["pwsh"], "{%s}connectXml" % NS["pwsh"],
                 "{%s}connectResponseXml" % NS["pwsh"], "{%s}Arguments" % NS["rsp"],
                 "{%s}Stream" % NS["rsp"])


def envelope_payloads(xml: str):
    """(lane, bytes) for every PSRP payload inside one envelope."""
    root = ET.fromstring(xml.encode("utf-8"))
    out = []
    for el in root.iter():
        if el.tag in _PAYLOAD_TAGS and (el.text or "").strip():
            lane = el.get("CommandId")
            if el.tag.endswith("Arguments"):
                parent_cid = root.find(".//rsp:CommandLine", NS)
                lane = parent_cid.get("CommandId") if parent_cid is not None else None
            out.append(((lane or "pool").upper(), base64.b64decode(el.text.strip())))
    return out


class TraceDecoder:
    """Decodes every PSRP message in a trace, per direction and lane."""

    def __init__(self, exchanges: list[Exchange]):
        self.client: list[tuple[str, Message]] = []   # (lane, message) client → server
        self.server: list[tuple[str, Message, int]] = []  # + exchange index
        defrag: dict[tuple, Defragmenter] = {}
        for i, ex in enumerate(exchanges):
            if "http://schemas.microsoft.com/powershell/" not in ex.request:
                continue   # a WinRS cmd shell exchange in a mixed trace
            for lane, data in envelope_payloads(ex.request):
                d = defrag.setdefault(("c", lane), Defragmenter())
                self.client.extend((lane, msg) for msg in d.feed(data))
            if ex.response and ex.status is None and "<s:Fault" not in ex.response:
                for lane, data in envelope_payloads(ex.response):
                    d = defrag.setdefault(("s", lane), Defragmenter())
                    self.server.extend((lane, msg, i) for msg in d.feed(data))
        self.incomplete = [k for k, d in defrag.items() if d.incomplete]

    def server_types(self, lane: str | None = None) -> list[int]:
        return [m.message_type for ln, m, _ in self.server if lane is None or ln == lane]


# ---------------------------------------------------------------------------
# Fragments and messages
# ---------------------------------------------------------------------------

def test_fragment_header_layout():
    raw = Fragment(1, 0, True, True, b"abc").pack()
    assert raw == bytes.fromhex("0000000000000001" "0000000000000000" "03" "00000003") + b"abc"
    middle = Fragment(0x0102030405060708, 7, False, False, b"").pack()
    assert middle == bytes.fromhex("0102030405060708" "0000000000000007" "00" "00000000")
    frags = unpack_fragments(raw + middle)
    assert [(f.object_id, f.fragment_id, f.start, f.end, f.data) for f in frags] == [
        (1, 0, True, True, b"abc"), (0x0102030405060708, 7, False, False, b"")]
    with pytest.raises(FragmentError):
        unpack_fragments(raw[:-1])
    with pytest.raises(FragmentError):
        unpack_fragments(bytes.fromhex("00" * 16 + "04" + "00000000"))


def test_message_header_uses_dotnet_guid_order():
    rpid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    pid = uuid.UUID("0a0b0c0d-0e0f-1011-1213-141516171819")
    raw = Message(2, MessageType.CREATE_PIPELINE, rpid, pid, b"<S />").pack()
    assert raw[:8] == bytes.fromhex("02000000" "06100200")
    assert raw[8:24] == bytes.fromhex("33221100" "5544" "7766" "8899aabbccddeeff")
    assert raw[24:40] == bytes.fromhex("0d0c0b0a" "0f0e" "1110" "1213141516171819")
    back = Message.unpack(raw)
    assert (back.destination, back.message_type, back.rpid, back.pid, back.data) == \
        (2, MessageType.CREATE_PIPELINE, rpid, pid, b"<S />")
    bom = Message(1, MessageType.PIPELINE_OUTPUT, rpid, pid, b"\xef\xbb\xbf<S>x</S>")
    assert bom.has_bom and bom.text == "<S>x</S>"
    with pytest.raises(FragmentError):
        Message.unpack(raw[:39])


def test_fragmenter_and_defragmenter_round_trip():
    rnd = random.Random(1234)
    rpid = uuid.uuid4()
    big = Message(2, MessageType.PIPELINE_INPUT, rpid, uuid.uuid4(),
                  bytes(rnd.getrandbits(8) for _ in range(100000)))
    small = Message(2, MessageType.END_OF_PIPELINE_INPUT, rpid, big.pid, b"")
    fr = Fragmenter(1000)
    f_big = fr.fragment(big)
    f_small = fr.fragment(small)
    assert all(len(f) <= 1000 for f in f_big)
    assert f_big[0].start and not f_big[0].end and f_big[-1].end and not f_big[-1].start
    assert [f.fragment_id for f in f_big] == list(range(len(f_big)))
    assert len({f.object_id for f in f_big}) == 1
    assert f_small[0].object_id == f_big[0].object_id + 1
    assert f_small[0].start and f_small[0].end and len(f_small[0].data) == 40

    # Interleave the two objects and cut the byte stream at random places.
    order = f_big[:3] + f_small + f_big[3:]
    stream = b"".join(f.pack() for f in order)
    d = Defragmenter()
    got, pos = [], 0
    while pos < len(stream):
        step = rnd.randint(1, 3000)
        got.extend(d.feed(stream[pos:pos + step]))
        pos += step
    assert not d.incomplete
    assert [g.message_type for g in got] == [MessageType.END_OF_PIPELINE_INPUT,
                                             MessageType.PIPELINE_INPUT]
    assert got[1].data == big.data and got[1].pid == big.pid and got[1].rpid == rpid

    payloads = Fragmenter.group(f_big, 2500)
    assert all(len(p) <= 2500 for p in payloads)
    assert sum(len(unpack_fragments(p)) for p in payloads) == len(f_big)


def test_defragmenter_rejects_broken_sequences():
    fr = Fragmenter(100)
    frags = fr.fragment(Message(2, MessageType.PIPELINE_INPUT, NIL_UUID, NIL_UUID, b"x" * 300))
    with pytest.raises(FragmentError):
        Defragmenter().add(frags[1])            # no start fragment
    d = Defragmenter()
    d.add(frags[0])
    with pytest.raises(FragmentError):
        d.add(frags[2])                         # FragmentId gap


def test_message_type_constants():
    expected = {
        "SESSION_CAPABILITY": 0x00010002, "INIT_RUNSPACEPOOL": 0x00010004,
        "PUBLIC_KEY": 0x00010005, "ENCRYPTED_SESSION_KEY": 0x00010006,
        "PUBLIC_KEY_REQUEST": 0x00010007, "CONNECT_RUNSPACEPOOL": 0x00010008,
        "SET_MAX_RUNSPACES": 0x00021002, "SET_MIN_RUNSPACES": 0x00021003,
        "RUNSPACE_AVAILABILITY": 0x00021004, "RUNSPACEPOOL_STATE": 0x00021005,
        "CREATE_PIPELINE": 0x00021006, "GET_AVAILABLE_RUNSPACES": 0x00021007,
        "USER_EVENT": 0x00021008, "APPLICATION_PRIVATE_DATA": 0x00021009,
        "GET_COMMAND_METADATA": 0x0002100A, "RUNSPACEPOOL_INIT_DATA": 0x0002100B,
        "RESET_RUNSPACE_STATE": 0x0002100C, "RUNSPACEPOOL_HOST_CALL": 0x00021100,
        "RUNSPACEPOOL_HOST_RESPONSE": 0x00021101, "PIPELINE_INPUT": 0x00041002,
        "END_OF_PIPELINE_INPUT": 0x00041003, "PIPELINE_OUTPUT": 0x00041004,
        "ERROR_RECORD": 0x00041005, "PIPELINE_STATE": 0x00041006, "DEBUG_RECORD": 0x00041007,
        "VERBOSE_RECORD": 0x00041008, "WARNING_RECORD": 0x00041009,
        "PROGRESS_RECORD": 0x00041010, "INFORMATION_RECORD": 0x00041011,
        "PIPELINE_HOST_CALL": 0x00041100, "PIPELINE_HOST_RESPONSE": 0x00041101,
    }
    assert {m.name: m.value for m in MessageType} == expected


# ---------------------------------------------------------------------------
# CLIXML
# ---------------------------------------------------------------------------

PRIMITIVES = [
    ("text", "<S>text</S>"),
    ("", "<S />"),
    (True, "<B>true</B>"),
    (False, "<B>false</B>"),
    (None, "<Nil />"),
    (5, "<I32>5</I32>"),
    (-2147483648, "<I32>-2147483648</I32>"),
    (2 ** 31, "<I64>2147483648</I64>"),
    (clixml.PSInt64(1), "<I64>1</I64>"),
    (clixml.PSUInt32(4294967295), "<U32>4294967295</U32>"),
    (clixml.PSUInt64(18446744073709551615), "<U64>18446744073709551615</U64>"),
    (clixml.PSInt16(-32767), "<I16>-32767</I16>"),
    (clixml.PSUInt16(65535), "<U16>65535</U16>"),
    (clixml.PSByte(254), "<By>254</By>"),
    (clixml.PSSByte(-127), "<SB>-127</SB>"),
    (12.5, "<Db>12.5</Db>"),
    (clixml.PSSingle(1.5), "<Sg>1.5</Sg>"),
    (decimal.Decimal("12.34"), "<D>12.34</D>"),
    (b"\x01\x02\x03\x04", "<BA>AQIDBA==</BA>"),
    (uuid.UUID("792e5b37-4505-47ef-b7d2-8711bb7affa8"), "<G>792e5b37-4505-47ef-b7d2-8711bb7affa8</G>"),
    (clixml.PSChar("a"), "<C>97</C>"),
    (clixml.PSVersion("6.2.1.3"), "<Version>6.2.1.3</Version>"),
    (clixml.PSUri("http://www.microsoft.com/"), "<URI>http://www.microsoft.com/</URI>"),
    (clixml.PSXml("<a b=\"c\">d</a>"), "<XD>&lt;a b=\"c\"&gt;d&lt;/a&gt;</XD>"),
    (clixml.PSScriptBlock("get-command -type cmdlet"), "<SBK>get-command -type cmdlet</SBK>"),
    (clixml.PSSecureString("AAEC"), "<SS>AAEC</SS>"),
    (dt.timedelta(seconds=9, microseconds=26903), "<TS>PT9.026903S</TS>"),
    (dt.timedelta(days=1, hours=2, minutes=3, seconds=4), "<TS>P1DT2H3M4S</TS>"),
    (dt.timedelta(0), "<TS>PT0S</TS>"),
]


@pytest.mark.parametrize("value,xml", PRIMITIVES, ids=[x for _, x in PRIMITIVES])
def test_clixml_primitives(value, xml):
    assert clixml.serialize(value) == xml
    back = clixml.deserialize(xml)
    assert back == value
    # Plain ints come back as int (I32) or as the tagged subclass they needed.
    assert type(back) is type(value) or (type(value) is int and isinstance(back, int))
    named = clixml.serialize(value, "Prop")
    assert ' N="Prop"' in named
    assert clixml.deserialize(named) == value


def test_clixml_string_escaping():
    cases = {
        "Order\nDetails": "Order_x000A_Details",
        "Order_Details": "Order_Details",
        "Order_x0020_": "Order_x005F_x0020_",
        "_X0041_": "_x005F_X0041_",
        "tab\there\r\n": "tab_x0009_here_x000D__x000A_",
        "\x7f\x85": "_x007F__x0085_",
        "Grüße 日本": "Grüße 日本",
        "🎉": "_xD83C__xDF89_",
    }
    for plain, enc in cases.items():
        assert clixml.encode_string(plain) == enc, plain
        assert clixml.decode_string(enc) == plain, enc
    # A string Windows sent (test_psrp_multiple_commands.yml).
    wire = "こんにちは - actual_x005F_x000A_string_x000A_newline: _xD801__xDC37_"
    assert clixml.decode_string(wire) == "こんにちは - actual_x000A_string\nnewline: \U00010437"
    assert clixml.encode_string(clixml.decode_string(wire)) == wire
    # Property names are escaped too.
    xml = clixml.serialize(clixml.PSObject(extended_properties={"a b\n": 1}))
    assert 'N="a b_x000A_"' in xml
    assert clixml.deserialize(xml)["a b\n"] == 1
    # Markup characters survive (ElementTree does the entity decoding).
    assert clixml.deserialize(clixml.serialize("<&>\"'")) == "<&>\"'"


def test_clixml_datetime():
    v = clixml.deserialize("<DT>2008-04-11T10:42:32.2731993-07:00</DT>")
    assert isinstance(v, clixml.PSDateTime)
    assert (v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond) == \
        (2008, 4, 11, 10, 42, 32, 273199)
    assert v.nanosecond == 300
    assert v.utcoffset() == dt.timedelta(hours=-7)
    assert clixml.serialize(v) == "<DT>2008-04-11T10:42:32.2731993-07:00</DT>"
    z = clixml.deserialize("<DT>2024-01-02T03:04:05Z</DT>")
    assert z.tzinfo == dt.timezone.utc
    assert clixml.serialize(z) == "<DT>2024-01-02T03:04:05.0000000Z</DT>"
    naive = clixml.deserialize("<DT>2024-01-02T03:04:05.5</DT>")
    assert naive.tzinfo is None and naive.microsecond == 500000
    assert clixml.serialize(naive) == "<DT>2024-01-02T03:04:05.5000000</DT>"


def test_clixml_duration_forms():
    assert clixml.deserialize("<TS>PT9.0269026S</TS>") == dt.timedelta(seconds=9.026903)
    assert clixml.deserialize("<TS>-P1DT1H</TS>") == -dt.timedelta(days=1, hours=1)
    assert clixml.deserialize("<TS>PT1M</TS>") == dt.timedelta(minutes=1)
    with pytest.raises(clixml.CLIXMLError):
        clixml.deserialize("<TS>P</TS>")


def test_clixml_complex_objects_round_trip():
    xml = (
        '<Obj RefId="0"><TN RefId="0"><T>System.Drawing.Point</T><T>System.ValueType</T>'
        '<T>System.Object</T></TN><ToString>{X=10,Y=20}</ToString>'
        '<Props><B N="IsEmpty">false</B><I32 N="X">10</I32><I32 N="Y">20</I32></Props>'
        '<MS><S N="Property1">ext</S><MS N="PropertySet1"><S N="Property3">third</S></MS>'
        '<Obj N="Stack" RefId="1"><TN RefId="1"><T>System.Collections.Stack</T>'
        '<T>System.Object</T></TN><STK><I32>3</I32><I32>2</I32></STK></Obj>'
        '<Obj N="Queue" RefId="2"><TN RefId="2"><T>System.Collections.Queue</T>'
        '<T>System.Object</T></TN><QUE><I32>1</I32></QUE></Obj>'
        '<Obj N="Enumerable" RefId="3"><TNRef RefId="1" /><IE><S>a</S></IE></Obj>'
        '<Obj N="Dict" RefId="4"><TN RefId="3"><T>System.Collections.Hashtable</T>'
        '<T>System.Object</T></TN><DCT><En><I32 N="Key">1</I32><S N="Value">one</S></En>'
        '<En><S N="Key">two</S><Ref N="Value" RefId="2" /></En></DCT></Obj>'
        '<Obj N="Enum" RefId="5"><TN RefId="4"><T>System.ConsoleColor</T><T>System.Enum</T>'
        '<T>System.ValueType</T><T>System.Object</T></TN><ToString>Blue</ToString>'
        '<I32>9</I32></Obj>'
        '<Obj N="Noted" RefId="6"><S>This is a string</S><MS><S N="Note1">My note</S></MS></Obj>'
        '</MS></Obj>')
    obj = clixml.deserialize(xml)
    assert isinstance(obj, clixml.PSObject)
    assert obj.type_names[0] == "System.Drawing.Point" and obj.to_string == "{X=10,Y=20}"
    assert obj.adapted_properties == {"IsEmpty": False, "X": 10, "Y": 20}
    assert obj["X"] == 10 and obj.Property1 == "ext"
    assert obj["PropertySet1"] == {"Property3": "third"}
    assert isinstance(obj["Stack"], clixml.PSStack) and list(obj["Stack"]) == [3, 2]
    assert isinstance(obj["Queue"], clixml.PSQueue) and obj["Queue"] == [1]
    assert obj["Enumerable"].kind == "IE" and obj["Enumerable"].type_names[0] == \
        "System.Collections.Stack"
    d = obj["Dict"]
    assert d[1] == "one" and d["two"] is obj["Queue"]
    assert obj["Enum"].value == 9 and str(obj["Enum"]) == "Blue"
    assert obj["Noted"].value == "This is a string" and obj["Noted"]["Note1"] == "My note"

    again = clixml.serialize(obj)
    assert again.count("<TNRef") >= 1 and '<Ref N="Value" RefId="2" />' in again
    back = clixml.deserialize(again)
    assert clixml.serialize(back) == again
    assert back["Dict"]["two"] is back["Queue"]
    assert back == obj


def test_clixml_python_containers():
    xml = clixml.serialize({"a": [1, "x", None], "b": {"n": True}})
    assert xml.startswith('<Obj RefId="0"><TN RefId="0"><T>System.Collections.Hashtable</T>')
    assert "<T>System.Object[]</T>" in xml
    back = clixml.deserialize(xml)
    assert back == {"a": [1, "x", None], "b": {"n": True}}
    assert isinstance(back, clixml.PSDict) and isinstance(back["a"], clixml.PSList)
    doc = clixml.serialize_objs(["one", 2])
    assert doc.startswith('<Objs Version="1.1.0.1" xmlns="%s">' % clixml.CLIXML_NS)
    assert clixml.deserialize_objs(doc) == ["one", 2]


def test_clixml_rejects_garbage():
    with pytest.raises(clixml.CLIXMLError):
        clixml.deserialize("<Nope />")
    with pytest.raises(clixml.CLIXMLError):
        clixml.deserialize('<Obj RefId="0"><LST><Ref RefId="9" /></LST></Obj>')
    with pytest.raises(clixml.CLIXMLError):
        clixml.deserialize("<I32>x</I32>")
    with pytest.raises(clixml.CLIXMLError):
        clixml.deserialize("<S>unterminated")
    with pytest.raises(TypeError):
        clixml.serialize(object())


# ---------------------------------------------------------------------------
# Message builders
# ---------------------------------------------------------------------------

PYPSRP_SESSION_CAPABILITY = (
    '<Obj RefId="0"><MS><Version N="protocolversion">2.3</Version>'
    '<Version N="PSVersion">2.0</Version><Version N="SerializationVersion">1.1.0.1</Version>'
    '</MS></Obj>')


def test_session_capability_builder():
    assert msgs.session_capability() == PYPSRP_SESSION_CAPABILITY
    cap = msgs.parse_message(Message(1, MessageType.SESSION_CAPABILITY, NIL_UUID, NIL_UUID,
                                     b"\xef\xbb\xbf" + PYPSRP_SESSION_CAPABILITY.encode()))
    assert cap.protocol_version == "2.3" and cap.ps_version == "2.0"
    assert cap.serialization_version == clixml.PSVersion(1, 1, 0, 1)


def test_init_runspace_pool_builder():
    hi = msgs.HostInfo.with_host(raw_ui=True)
    data = msgs.init_runspace_pool(2, 5, host_info=hi, application_arguments={"k": "v"})
    obj = clixml.deserialize(data)
    assert obj["MinRunspaces"] == 2 and obj["MaxRunspaces"] == 5
    assert obj["PSThreadOptions"].value == 0
    assert obj["PSThreadOptions"].type_names[:2] == [
        "System.Management.Automation.Runspaces.PSThreadOptions", "System.Enum"]
    assert obj["ApartmentState"].value == 2 and str(obj["ApartmentState"]) == "Unknown"
    host = obj["HostInfo"]
    assert host["_isHostNull"] is False and host["_isHostUINull"] is False
    assert host["_isHostRawUINull"] is False and host["_useRunspaceHost"] is False
    table = host["_hostDefaultData"]["data"]
    assert sorted(table) == list(range(10))
    assert table[0]["T"] == "System.ConsoleColor" and table[9]["V"] == "winrmd test client"
    assert table[5]["V"]["width"] == 120
    args = obj["ApplicationArguments"]
    assert args == {"k": "v"} and args.type_names[0] == \
        "System.Management.Automation.PSPrimitiveDictionary"
    plain = clixml.deserialize(msgs.init_runspace_pool())["HostInfo"]
    assert plain.extended_properties == {"_isHostNull": True, "_isHostUINull": True,
                                         "_isHostRawUINull": True, "_useRunspaceHost": True}
    assert "<Nil N=\"ApplicationArguments\" />" in msgs.init_runspace_pool()


def test_create_pipeline_builder():
    c1 = msgs.Command("Get-Item").add_parameter("Path", "/tmp").add_argument(3)
    c2 = msgs.Command("$input", is_script=True, merge_my_result=2, merge_to_result=1,
                      merge_error=1)
    data = msgs.create_pipeline([c1, c2], no_input=False, add_to_history=True)
    obj = clixml.deserialize(data)
    assert obj["NoInput"] is False and obj["AddToHistory"] is True and obj["IsNested"] is False
    assert obj["RemoteStreamOptions"].value == 15
    assert str(obj["RemoteStreamOptions"]) == "AddInvocationInfo"
    ps = obj["PowerShell"]
    assert ps["IsNested"] is False and ps["ExtraCmds"] is None and ps["History"] is None
    cmds = ps["Cmds"]
    assert [c["Cmd"] for c in cmds] == ["Get-Item", "$input"]
    assert [c["IsScript"] for c in cmds] == [False, True]
    assert cmds[0]["UseLocalScope"] is None
    assert [(a["N"], a["V"]) for a in cmds[0]["Args"]] == [("Path", "/tmp"), (None, 3)]
    assert cmds[1]["MergeMyResult"].value == 2 and str(cmds[1]["MergeMyResult"]) == "Error"
    assert cmds[1]["MergeError"].value == 1 and cmds[1]["MergeInformation"].value == 0
    assert cmds[0]["MergePreviousResults"].type_names[0] == \
        "System.Management.Automation.Runspaces.PipelineResultTypes"
    # Protocol 2.2 peers do not know MergeInformation.
    old = clixml.deserialize(msgs.create_pipeline([c1], protocol_version=clixml.PSVersion(2, 2)))
    assert "MergeInformation" not in old["PowerShell"]["Cmds"][0]
    assert data.count("<TN ") == len(set(re.findall(r"<TN RefId=\"(\d+)\"", data)))


def test_small_message_builders():
    assert msgs.set_max_runspaces(3, 4) == \
        '<Obj RefId="0"><MS><I32 N="MaxRunspaces">4</I32><I64 N="ci">3</I64></MS></Obj>'
    assert msgs.set_min_runspaces(1, 2).endswith('<I64 N="ci">1</I64></MS></Obj>')
    assert msgs.get_available_runspaces(7) == '<Obj RefId="0"><MS><I64 N="ci">7</I64></MS></Obj>'
    assert msgs.reset_runspace_state(2) == '<Obj RefId="0"><MS><I64 N="ci">2</I64></MS></Obj>'
    assert msgs.connect_runspace_pool() == "<S />"
    assert clixml.deserialize(msgs.connect_runspace_pool(1, 4)) == \
        clixml.PSObject(extended_properties={"MinRunspaces": 1, "MaxRunspaces": 4})
    meta = clixml.deserialize(msgs.get_command_metadata(["Get-*"]))
    assert list(meta["Name"]) == ["Get-*"] and meta["Name"].type_names[0] == "System.String[]"
    assert meta["CommandType"].value == 383 and meta["Namespace"] is None
    assert msgs.end_of_pipeline_input() == b""


def test_host_response_builder():
    ok = clixml.deserialize(msgs.host_response(1, msgs.HostMethod.ReadLine, "typed"))
    assert ok["ci"] == 1 and isinstance(ok["ci"], clixml.PSInt64)
    assert ok["mi"].value == 11 and str(ok["mi"]) == "ReadLine"
    assert ok["mi"].type_names[0] == "System.Management.Automation.Remoting.RemoteHostMethodId"
    assert ok["mr"] == "typed" and "me" not in ok
    err = clixml.deserialize(msgs.host_response(4, 25, error="nope"))
    rec = msgs.parse_error_record(err["me"])
    assert rec.message == "nope" and rec.fully_qualified_error_id == "RemoteHostExecutionException"
    assert "mr" not in err


# ---------------------------------------------------------------------------
# Decoding the Windows traces
# ---------------------------------------------------------------------------

@needs_traces
@pytest.mark.parametrize("name", psrp_trace_files())
def test_every_trace_payload_decodes(name):
    exchanges = load_trace(name)
    dec = TraceDecoder(exchanges)
    if not dec.client and not dec.server:
        pytest.skip("no PSRP payloads in %s" % name)
    assert not dec.incomplete, "unfinished fragment sequences: %s" % dec.incomplete
    for lane, msg in dec.client:
        assert msg.destination == 2
        if msg.data:
            clixml.deserialize(msg.data)
    for lane, msg, _ in dec.server:
        assert msg.destination == 1
        assert msg.has_bom, "Windows starts server data with a UTF-8 BOM"
        msgs.parse_message(msg)


@needs_traces
def test_trace_multiple_invocations():
    ex = load_trace("test_psrp_multiple_invocations.yml")
    dec = TraceDecoder(ex)
    pool = [(m, i) for lane, m, i in dec.server if lane == "POOL"]
    assert [m.message_type for m, _ in pool] == [MessageType.SESSION_CAPABILITY,
                                                 MessageType.APPLICATION_PRIVATE_DATA,
                                                 MessageType.RUNSPACEPOOL_STATE]
    cap = msgs.parse_message(pool[0][0])
    assert pool[0][0].rpid == NIL_UUID and cap.protocol_version == "2.3"
    apd = msgs.parse_message(pool[1][0])
    table = apd.ps_version_table
    assert table["PSRemotingProtocolVersion"] == "2.3"
    assert table["SerializationVersion"] == "1.1.0.1"
    state = msgs.parse_message(pool[2][0])
    assert state.state == msgs.RunspacePoolState.OPENED and state.error is None
    # Both invocations: output then PIPELINE_STATE Completed, with CommandState Done.
    pipes = [(lane, m, i) for lane, m, i in dec.server if lane != "POOL"]
    assert [m.message_type for _, m, _ in pipes] == [
        MessageType.PIPELINE_OUTPUT, MessageType.PIPELINE_STATE] * 2
    for lane, m, i in pipes:
        if m.message_type == MessageType.PIPELINE_STATE:
            assert msgs.parse_message(m).state == msgs.PSInvocationState.COMPLETED
            assert "CommandState/Done" in ex[i].response
            assert "<rsp:ExitCode>0</rsp:ExitCode>" in ex[i].response
        else:
            assert msgs.parse_message(m).value == 2
    # The client side: our SESSION_CAPABILITY is byte-identical to pypsrp's.
    first = [m for lane, m in dec.client][0]
    assert first.message_type == MessageType.SESSION_CAPABILITY
    assert first.data.decode() == msgs.session_capability()


@needs_traces
def test_trace_pshost_ui_host_calls():
    ex = load_trace("test_psrp_pshost_ui_mocked_methods.yml")
    dec = TraceDecoder(ex)
    calls = [(msgs.parse_message(m), i) for lane, m, i in dec.server
             if m.message_type == MessageType.PIPELINE_HOST_CALL]
    names = [c.method_name for c, _ in calls]
    assert names[:5] == ["ReadLine", "ReadLineAsSecureString", "Write1", "Write2", "WriteLine1"]
    assert "PromptForChoice" in names and "PromptForCredential2" in names
    read_line = calls[0][0]
    assert (read_line.ci, read_line.method_id, read_line.parameters) == (1, 11, [])
    assert read_line.expects_response and read_line.pipeline_id != NIL_UUID
    assert "CommandState/Pending" in ex[calls[0][1]].response
    write2 = calls[3][0]
    assert write2.ci == -100 and write2.parameters == [9, 15, "Write2"]
    assert not write2.expects_response
    choice = [c for c, _ in calls if c.method_name == "PromptForChoice"][0]
    caption, message, choices, default = choice.parameters
    assert [c["label"] for c in choices] == ["Prompt1 label", "Prompt2 label"] and default == 0
    progress = [c for c, _ in calls if c.method_name == "WriteProgress"][0]
    assert progress.parameters[1]["Activity"] == "Preparing modules for first use."
    # The client's answers (PIPELINE_HOST_RESPONSE on the pr stream).
    answers = [clixml.deserialize(m.data) for lane, m in dec.client
               if m.message_type == MessageType.PIPELINE_HOST_RESPONSE]
    assert answers[0]["mr"] == "ReadLine response" and answers[0]["ci"] == 1
    assert answers[2]["mr"] == {"prompt field": "prompt response"}
    assert answers[-1]["mr"] == 1
    pr_sends = [e for e in ex if _action(e.request).endswith("/Send") and 'Name="pr"' in e.request]
    assert len(pr_sends) == len(answers)
    outputs = [msgs.parse_message(m).value for lane, m, _ in dec.server
               if m.message_type == MessageType.PIPELINE_OUTPUT]
    assert outputs[0] == "ReadLine response"
    assert isinstance(outputs[1], clixml.PSSecureString)


@needs_traces
def test_trace_error_failed():
    dec = TraceDecoder(load_trace("test_psrp_error_failed.yml"))
    states = [msgs.parse_message(m) for lane, m, _ in dec.server
              if m.message_type == MessageType.PIPELINE_STATE]
    assert len(states) == 1
    st = states[0]
    assert st.state == msgs.PSInvocationState.FAILED
    err = st.error
    assert err.message == "error"
    assert err.fully_qualified_error_id == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert err.exception_type == "Microsoft.PowerShell.Commands.WriteErrorException"
    assert err.category == msgs.ErrorCategory.NOT_SPECIFIED
    assert err.category_activity == "Write-Error"
    assert err.invocation_info["Line"].startswith("$ErrorActionPreference = 'Stop'")
    outs = [msgs.parse_message(m).value for lane, m, _ in dec.server
            if m.message_type == MessageType.PIPELINE_OUTPUT]
    assert outs == ["before"]


@needs_traces
def test_trace_stream_records():
    dec = TraceDecoder(load_trace("test_psrp_stream_output_invocation.yml"))
    by_type: dict[int, list] = {}
    for lane, m, _ in dec.server:
        by_type.setdefault(m.message_type, []).append(msgs.parse_message(m))
    assert by_type[MessageType.DEBUG_RECORD][0].message == "debug stream"
    assert by_type[MessageType.VERBOSE_RECORD][0].message == "verbose stream"
    assert by_type[MessageType.WARNING_RECORD][0].message == "warning stream"
    assert by_type[MessageType.WARNING_RECORD][0].invocation_info["PipelineLength"] == 1
    assert by_type[MessageType.ERROR_RECORD][0].message == "error stream"
    info = by_type[MessageType.INFORMATION_RECORD][0]
    assert info.message_data == "information stream" and info.source == "Write-Information"
    prog = by_type[MessageType.PROGRESS_RECORD][0]
    assert prog.activity == "Preparing modules for first use." and prog.record_type == 1
    assert by_type[MessageType.PIPELINE_OUTPUT][0].value == "output stream"


@needs_traces
def test_trace_command_metadata_and_connect():
    dec = TraceDecoder(load_trace("test_psrp_get_command_metadata.yml"))
    req = [clixml.deserialize(m.data) for lane, m in dec.client
           if m.message_type == MessageType.GET_COMMAND_METADATA][0]
    assert list(req["Name"]) == ["new-pssession*"]
    outs = [msgs.parse_message(m).value for lane, m, _ in dec.server
            if m.message_type == MessageType.PIPELINE_OUTPUT]
    assert outs[0].type_names[0] == "Selected.Microsoft.PowerShell.Commands.GenericMeasureInfo"
    assert outs[0]["Count"] == 3 and outs[1]["Name"] == "New-PSSession"
    assert outs[1]["CommandType"].value == 8
    assert outs[1]["Parameters"]["ComputerName"]["ParameterType"] == "System.String[]"

    dec = TraceDecoder(load_trace("test_psrp_disconnect_runspaces.yml"))
    conn = [(lane, m) for lane, m, _ in dec.server
            if m.message_type == MessageType.RUNSPACEPOOL_INIT_DATA]
    assert len(conn) == 2
    init = msgs.parse_message(conn[0][1])
    assert (init.min_runspaces, init.max_runspaces) == (1, 1)
    caps = [m for lane, m, _ in dec.server if m.message_type == MessageType.SESSION_CAPABILITY]
    # First capability of each pool has a zero RPID, the Connect ones carry the pool's.
    assert [m.rpid == NIL_UUID for m in caps] == [True, True, False, False]
    connect_req = [m for lane, m in dec.client
                   if m.message_type == MessageType.CONNECT_RUNSPACEPOOL]
    assert connect_req[0].data == b"<S />"


# ---------------------------------------------------------------------------
# WS-Man faults
# ---------------------------------------------------------------------------

@needs_traces
def test_parse_fault_from_traces():
    timed = [e for e in load_trace("test_psrp_long_running_cmdlet.yml") if "s:Fault" in e.response]
    f = psrp.parse_fault(timed[0].response, 500)
    assert f.code == "s:Receiver" and f.subcode == "w:TimedOut" and f.subcode_local == "TimedOut"
    assert f.wsman_code == psrp.wsman.ERROR_OPERATION_TIMEOUT and f.machine == "127.0.0.1"
    assert "OperationTimeout" in f.message and f.reason == f.message
    assert f.action == "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
    assert f.fault_detail is None and f.http_status == 500

    bad = [e for e in load_trace("test_psrp_receive_failure.yml") if e.status][0]
    f = psrp.parse_fault(bad.response, bad.status)
    assert f.code == "s:Sender" and f.subcode == "w:InvalidSelectors"
    assert f.wsman_code == psrp.wsman.ERROR_INVALID_SELECTORS
    assert f.fault_detail.endswith("/faultDetail/UnexpectedSelectors")
    assert "command identifier that does not exist" in f.message

    hdr = [e for e in load_trace("test_psrp_is_alive_other_wsman_error.yml") if e.status][0]
    f = psrp.parse_fault(hdr.response, 500)
    assert f.subcode == "a:InvalidMessageInformationHeader" and f.wsman_code == 2150858767

    if (TRACE_DIR / "test_winrs_no_cmd_shell.yml").is_file():
        nocmd = [e for e in load_trace("test_winrs_no_cmd_shell.yml") if e.status][0]
        f = psrp.parse_fault(nocmd.response, 500)
        assert f.provider == "Shell cmd plugin" and f.wsman_code == 2147942402
        assert "cannot find the file" in f.message

    assert psrp.parse_fault(load_trace("test_psrp_open_runspace.yml")[0].response) is None


def test_parse_fault_wmi_error():
    xml = ('<s:Envelope xmlns:s="%s"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value>'
           '<s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code>'
           '<s:Reason><s:Text>quota</s:Text></s:Reason><s:Detail>'
           '<p:MSFT_WmiError xmlns:p="%s"><p:error_Code>2150859174</p:error_Code>'
           '</p:MSFT_WmiError></s:Detail></s:Fault></s:Body></s:Envelope>'
           % (NS["s"], NS["wmie"]))
    f = psrp.parse_fault(xml.encode("utf-16"))
    assert f.wmi_error_code == 2150859174 and f.wsman_code == 2150859174
    assert f.reason == "quota" and f.message is None


# ---------------------------------------------------------------------------
# WSManTransport against recorded exchanges
# ---------------------------------------------------------------------------

class Replay:
    """Stands in for winrm.transport.Transport: checks each request's Action
    against the recording and answers with the recorded response."""

    def __init__(self, exchanges: list[Exchange]):
        load_trace_cache[id(self)] = list(exchanges)
        self.pending = list(exchanges)
        self.sent: list[ET.Element] = []
        self.lock = threading.Lock()

    def factory(self):
        return self

    def send_message(self, xml):
        from winrm.exceptions import WinRMTransportError
        root = ET.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml)
        with self.lock:
            assert self.pending, "unexpected extra request %s" % _action(xml)
            ex = self.pending.pop(0)
            self.sent.append(root)
        assert _action(xml) == ex.action, "sent %s, recording has %s" % (_action(xml), ex.action)
        if ex.status:
            raise WinRMTransportError("http", ex.status, ex.response.encode("utf-8"))
        return ex.response.encode("utf-8")

    def requests(self, suffix: str) -> list[ET.Element]:
        return [r for r in self.sent
                if r.find("s:Header/a:Action", NS).text.endswith("/" + suffix)]


def command_id_of(rep: "Replay", index: int) -> str:
    """The CommandId the (recorded) server returned for the index-th Command."""
    done = [e for e in load_trace_cache[id(rep)] if e.action.endswith("/Command")]
    m = re.search(r"<rsp:CommandId>([^<]+)</rsp:CommandId>", done[index].response)
    return m.group(1)


load_trace_cache: dict[int, list[Exchange]] = {}


def _hdr(root, path):
    el = root.find("s:Header/" + path, NS)
    return None if el is None else (el.text or "").strip()


def _replay_transport(name: str, **kw):
    pytest.importorskip("winrm")
    rep = Replay(load_trace(name))
    tr = psrp.WSManTransport("https://127.0.0.1:55986/wsman", transport_factory=rep.factory, **kw)
    return rep, tr


@needs_traces
def test_wsman_replay_multiple_invocations():
    rep, tr = _replay_transport("test_psrp_multiple_invocations.yml")
    pool = psrp.RunspacePool(tr)
    pool.open(timeout=5)
    assert pool.state == psrp.RunspacePoolState.OPENED
    assert tr.shell_id == "B2DDE5BA-F22F-4493-9B8E-8B565073F563"
    assert tr.shell_info["State"] == "Connected" and tr.max_envelope_size == 512000
    results = []
    for _ in range(2):
        ps = psrp.PowerShell(pool).add_script("1 + 1")
        results.append((ps.invoke(timeout=5), ps.state, ps.command_state))
    pool.close()
    assert results == [([2], psrp.PSInvocationState.COMPLETED, "Done")] * 2
    assert not rep.pending

    create = rep.requests("Create")[0]
    assert _hdr(create, "w:ResourceURI") == "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
    opt = create.find("s:Header/w:OptionSet/w:Option", NS)
    assert (opt.get("Name"), opt.get("MustComply"), opt.text) == ("protocolversion", "true", "2.3")
    shell = create.find("s:Body/rsp:Shell", NS)
    assert shell.get("ShellId") == str(pool.rpid).upper()
    assert shell.find("rsp:InputStreams", NS).text == "stdin pr"
    assert shell.find("rsp:OutputStreams", NS).text == "stdout"
    creation = base64.b64decode(shell.find("pwsh:creationXml", NS).text)
    sent = Defragmenter().feed(creation)
    assert [m.message_type for m in sent] == [MessageType.SESSION_CAPABILITY,
                                              MessageType.INIT_RUNSPACEPOOL]
    assert all(m.rpid == pool.rpid for m in sent)
    assert _hdr(create, "w:MaxEnvelopeSize") == "153600"

    receives = rep.requests("Receive")
    assert [_hdr(r, "w:MaxEnvelopeSize") for r in receives[:2]] == ["153600", "512000"]
    keep = receives[0].find("s:Header/w:OptionSet/w:Option", NS)
    assert keep.get("Name") == "WSMAN_CMDSHELL_OPTION_KEEPALIVE"
    assert receives[0].find("s:Body/rsp:Receive/rsp:DesiredStream", NS).get("CommandId") is None
    command = rep.requests("Command")[0]
    cid = command.find("s:Body/rsp:CommandLine", NS).get("CommandId")
    args = base64.b64decode(command.find("s:Body/rsp:CommandLine/rsp:Arguments", NS).text)
    create_msg = Defragmenter().feed(args)[0]
    assert create_msg.message_type == MessageType.CREATE_PIPELINE
    assert str(create_msg.pid).upper() == cid
    # Later requests name the CommandId the server answered with (here the
    # recorded one, since the replayed server echoed pypsrp's id).
    answered = command_id_of(rep, 0)
    assert receives[2].find("s:Body/rsp:Receive/rsp:DesiredStream", NS).get("CommandId") == answered
    sig = rep.requests("Signal")[0].find("s:Body/rsp:Signal", NS)
    assert sig.get("CommandId") == answered
    assert sig.find("rsp:Code", NS).text == psrp.SignalCode.TERMINATE
    assert _hdr(rep.requests("Delete")[0], "w:SelectorSet/w:Selector") == tr.shell_id
    session_ids = {_hdr(r, "p:SessionId") for r in rep.sent}
    assert len(session_ids) == 1


@needs_traces
def test_wsman_replay_failed_pipeline_and_timeouts():
    rep, tr = _replay_transport("test_psrp_error_failed.yml")
    pool = psrp.RunspacePool(tr).open(timeout=5)
    ps = psrp.PowerShell(pool, auto_close=False).add_script("x")
    assert ps.invoke(timeout=5) == ["before"]
    assert ps.state == psrp.PSInvocationState.FAILED and ps.had_errors
    assert ps.invocation_error.message == "error"
    pool.close(close_pipelines=False)
    assert not rep.pending

    # Two TimedOut faults (the first recorded without an HTTP status) are polled through.
    rep, tr = _replay_transport("test_psrp_long_running_cmdlet.yml")
    pool = psrp.RunspacePool(tr).open(timeout=5)
    ps = psrp.PowerShell(pool, auto_close=False).add_script("x")
    ps.begin_invoke()
    polls = 0
    while not ps.poll_invoke(5):
        polls += 1
    assert polls == 2 and ps.output == ["hi"] and ps.command_state == "Done"
    pool.close(close_pipelines=False)
    assert not rep.pending


@needs_traces
def test_wsman_replay_input_and_receive_fault():
    rep, tr = _replay_transport("test_psrp_with_input.yml")
    pool = psrp.RunspacePool(tr).open(timeout=5)
    ps = psrp.PowerShell(pool, auto_close=False).add_script("$input")
    out = ps.invoke(input=["1", 2, {"a": "b"}, ["a", "b"]], timeout=5)
    assert out[:2] == ["1", 2] and out[2] == {"a": "b"} and list(out[3]) == ["a", "b"]
    assert out[2].type_names[0] == "Deserialized.System.Collections.Hashtable"
    send = rep.requests("Send")[0]
    streams = send.findall("s:Body/rsp:Send/rsp:Stream", NS)
    assert [s.get("Name") for s in streams] == ["stdin"]
    assert streams[0].get("CommandId") == tr.command_ids[ps.pid] == command_id_of(rep, 0)
    sent = Defragmenter().feed(base64.b64decode(streams[0].text))
    assert [m.message_type for m in sent] == [MessageType.PIPELINE_INPUT] * 4 + \
        [MessageType.END_OF_PIPELINE_INPUT]
    assert sent[-1].data == b""
    pool.close(close_pipelines=False)

    rep, tr = _replay_transport("test_psrp_receive_failure.yml")
    pool = psrp.RunspacePool(tr).open(timeout=5)
    with pytest.raises(psrp.WSManFault) as info:
        tr.receive(uuid.UUID("d1bf48da-b26c-4f4a-be52-b382ac20dd1f"), 5)
    assert info.value.wsman_code == psrp.wsman.ERROR_INVALID_SELECTORS
    assert info.value.http_status == 500 and "<s:Fault>" in info.value.raw
    pool.close()
    assert not rep.pending


@needs_traces
def test_wsman_replay_protocol_2_1_server():
    """Server 2008 R2 mints its own ShellId and CommandId and stays at 153600."""
    rep, tr = _replay_transport("test_psrp_run_protocol_version_2.1.yml")
    pool = psrp.RunspacePool(tr).open(timeout=5)
    assert pool.server_capability.protocol_version == "2.1"
    assert pool.protocol_version == "2.1"
    assert tr.shell_id == "C8CD7685-F0A0-4B79-8F82-B8B37462667A" != str(pool.rpid).upper()
    assert tr.shell_info is None and tr.max_envelope_size == 153600
    ps = psrp.PowerShell(pool, auto_close=False).add_script("x").expect_input()
    out = ps.invoke(timeout=5)
    assert ps.state == psrp.PSInvocationState.COMPLETED and out
    assert tr.command_ids[ps.pid] == "24864ED3-8FB4-4934-AD7D-B29723D4681F"
    recv = rep.requests("Receive")[-1]
    assert recv.find("s:Body/rsp:Receive/rsp:DesiredStream", NS).get("CommandId") == \
        "24864ED3-8FB4-4934-AD7D-B29723D4681F"
    create = Defragmenter().feed(base64.b64decode(
        rep.requests("Command")[0].find(".//rsp:Arguments", NS).text))[0]
    # The pool speaks 2.1 with this server, so no 2.3-only merge field is sent.
    assert "MergeInformation" not in create.data.decode()
    pool.close(close_pipelines=False)
    assert not rep.pending


@needs_traces
def test_wsman_replay_disconnect_enumerate_connect():
    rep = Replay(load_trace("test_psrp_disconnect_runspaces.yml"))
    mk = lambda: psrp.WSManTransport("https://127.0.0.1:55986/wsman",  # noqa: E731
                                     transport_factory=rep.factory)
    pool1 = psrp.RunspacePool(mk()).open(timeout=5)
    pool1.disconnect()
    assert pool1.state == psrp.RunspacePoolState.DISCONNECTED
    pool1.reconnect()
    pool1.disconnect()
    pool2 = psrp.RunspacePool(mk()).open(timeout=5)
    pool2.disconnect()
    assert _hdr(rep.requests("Reconnect")[0], "w:SelectorSet/w:Selector") == \
        "B6631D8E-65A0-49F2-9053-A1B156C95777"
    assert rep.requests("Disconnect")[0].find("s:Body/rsp:Disconnect", NS) is not None

    client = mk()
    shells = client.enumerate_shells()
    assert [s.shell_id for s in shells] == ["B6631D8E-65A0-49F2-9053-A1B156C95777",
                                            "01AA3E43-9E21-424B-A7FC-BC16AA34F4CE"]
    assert all(s.state == "Disconnected" for s in shells)
    assert shells[0]["ResourceUri"].endswith("/Microsoft.PowerShell")
    assert client.enumerate_commands(shells[0].shell_id) == []
    assert client.enumerate_commands(shells[1].shell_id) == []
    flt = rep.requests("Enumerate")[1].find(".//w:Filter", NS)
    assert flt.get("Dialect").endswith("/SelectorFilter")
    for info in shells:
        t = mk()
        t.shell_id = info.shell_id
        pool = psrp.RunspacePool(t, rpid=uuid.UUID(info.shell_id))
        pool.connect(wait_private_data=False)
        assert pool.state == psrp.RunspacePoolState.OPENED
        assert pool.init_data.max_runspaces == 1
        pool.poll(5)   # Windows answered this Receive with the old RUNSPACEPOOL_STATE
        assert pool.state == psrp.RunspacePoolState.OPENED
    connect = rep.requests("Connect")[0]
    opt = connect.find("s:Header/w:OptionSet/w:Option", NS)
    assert (opt.get("Name"), opt.get("MustComply")) == ("protocolversion", "true")
    cx = Defragmenter().feed(base64.b64decode(connect.find(".//pwsh:connectXml", NS).text))
    assert [m.message_type for m in cx] == [MessageType.SESSION_CAPABILITY,
                                            MessageType.CONNECT_RUNSPACEPOOL]
    assert cx[1].data == b"<S />"
    for sid in ("B6631D8E-65A0-49F2-9053-A1B156C95777", "01AA3E43-9E21-424B-A7FC-BC16AA34F4CE"):
        t = mk()
        t.shell_id = sid
        t.close_pool()
    assert not rep.pending


# ---------------------------------------------------------------------------
# WSManTransport over real HTTP (python3-winrm) against a canned local server
# ---------------------------------------------------------------------------

_TIMED_OUT = (
    '<s:Envelope xmlns:s="{s}" xmlns:a="{a}" xmlns:w="{w}"><s:Header>'
    '<a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header>'
    '<s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut'
    '</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management '
    'service cannot complete the operation within the time specified in OperationTimeout.  '
    '</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="{f}" Code="2150858793" '
    'Machine="localhost"><f:Message>timed out</f:Message></f:WSManFault></s:Detail>'
    '</s:Fault></s:Body></s:Envelope>').format(**NS)
_BAD_SELECTOR = _TIMED_OUT.replace("s:Receiver", "s:Sender").replace(
    "w:TimedOut", "w:InvalidSelectors").replace("2150858793", "2150858843").replace(
    "<s:Detail>", "<s:Detail><w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/"
    "faultDetail/UnexpectedSelectors</w:FaultDetail>")


class _CannedHandler(http.server.BaseHTTPRequestHandler):
    answers: list = []
    seen: list = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"u:p").decode():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="WSMAN"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        type(self).seen.append(body)
        status, text = type(self).answers.pop(0)
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_wsman_http_faults_through_python_winrm():
    pytest.importorskip("winrm")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CannedHandler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        url = "http://127.0.0.1:%d/wsman" % srv.server_address[1]
        _CannedHandler.answers[:] = [(500, _TIMED_OUT), (500, _BAD_SELECTOR),
                                     (500, "not xml"), (200, "<oops")]
        _CannedHandler.seen[:] = []
        tr = psrp.WSManTransport(url, "u", "p", auth="basic", operation_timeout=2)
        tr.shell_id = "00000000-0000-0000-0000-000000000001"
        assert tr.receive(None, 2).payloads == []          # TimedOut → poll again
        with pytest.raises(psrp.WSManFault) as info:
            tr.receive(uuid.uuid4(), 2)
        f = info.value
        assert (f.code, f.subcode, f.wsman_code, f.machine, f.http_status) == \
            ("s:Sender", "w:InvalidSelectors", 2150858843, "localhost", 500)
        assert f.fault_detail.endswith("UnexpectedSelectors") and f.message == "timed out"
        with pytest.raises(psrp.WSManHTTPError) as info:
            tr.signal(None, psrp.SignalCode.TERMINATE)
        assert info.value.status == 500 and info.value.body == "not xml"
        with pytest.raises(psrp.TransportError):
            tr.request(psrp.wsman.ACTION_GET)
        first = ET.fromstring(_CannedHandler.seen[0])
        assert _hdr(first, "w:OperationTimeout") == "PT2S"
        assert first.find("s:Body/rsp:Receive/rsp:DesiredStream", NS).text == "stdout"
        bad = psrp.WSManTransport(url, "u", "wrong", auth="basic")
        bad.shell_id = tr.shell_id
        with pytest.raises(psrp.WSManAuthError):
            bad.receive(None, 1)
    finally:
        srv.shutdown()
        srv.server_close()
