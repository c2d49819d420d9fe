"""CLIXML serialization as used by PSRP (MS-PSRP 2.2.5).

``deserialize(text)`` turns one serialized object into Python values:

=============  ==========================================================
CLIXML         Python
=============  ==========================================================
S              str
C              PSChar (str of length 1)
B              bool
DT             PSDateTime (datetime with a ``nanosecond`` remainder)
TS             timedelta
By/SB          PSByte / PSSByte (int)
U16/I16        PSUInt16 / PSInt16 (int)
U32/I32        PSUInt32 / int
U64/I64        PSUInt64 / PSInt64 (int)
Sg/Db/D        PSSingle (float) / float / decimal.Decimal
BA             bytes
G              uuid.UUID
URI            PSUri (str)
Version        PSVersion
XD             PSXml (str)
SBK            PSScriptBlock (str)
SS             PSSecureString (str; the encrypted base64 text, untouched)
Nil            None
Obj            PSObject, or PSList / PSStack / PSQueue / PSDict for
               containers (list/dict subclasses carrying type names etc.)
Ref            the very Python object produced for the referenced RefId
=============  ==========================================================

``serialize(value)`` goes the other way.  Plain ``int`` becomes I32 (I64 when
it does not fit), ``list``/``tuple`` an ``Object[]``, ``dict`` a Hashtable.
Each call of ``serialize``/``deserialize`` is one serializer lifetime: RefIds
and type-name ids restart at 0, as PowerShell does per message.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any, Iterable

__all__ = [
    "CLIXML_NS",
    "PSObject",
    "PSList",
    "PSStack",
    "PSQueue",
    "PSDict",
    "PSPropertySet",
    "PSVersion",
    "PSDateTime",
    "PSChar",
    "PSByte",
    "PSSByte",
    "PSInt16",
    "PSUInt16",
    "PSUInt32",
    "PSInt64",
    "PSUInt64",
    "PSSingle",
    "PSUri",
    "PSXml",
    "PSScriptBlock",
    "PSSecureString",
    "ps_enum",
    "encode_string",
    "decode_string",
    "serialize",
    "deserialize",
    "deserialize_objs",
    "serialize_objs",
    "Serializer",
    "Deserializer",
    "CLIXMLError",
]

CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"


class CLIXMLError(ValueError):
    """The CLIXML text could not be understood."""


# ---------------------------------------------------------------------------
# Value types that have no exact Python counterpart
# ---------------------------------------------------------------------------

class _TaggedInt(int):
    tag = "I32"
    lo = -(2 ** 31)
    hi = 2 ** 31 - 1

    def __new__(cls, value: int = 0):
        v = int(value)
        if not cls.lo <= v <= cls.hi:
            raise OverflowError("%d does not fit %s" % (v, cls.__name__))
        return super().__new__(cls, v)

    def __repr__(self) -> str:
        return "%s(%d)" % (type(self).__name__, int(self))


class PSByte(_TaggedInt):
    tag, lo, hi = "By", 0, 255


class PSSByte(_TaggedInt):
    tag, lo, hi = "SB", -128, 127


class PSInt16(_TaggedInt):
    tag, lo, hi = "I16", -(2 ** 15), 2 ** 15 - 1


class PSUInt16(_TaggedInt):
    tag, lo, hi = "U16", 0, 2 ** 16 - 1


class PSUInt32(_TaggedInt):
    tag, lo, hi = "U32", 0, 2 ** 32 - 1


class PSInt64(_TaggedInt):
    tag, lo, hi = "I64", -(2 ** 63), 2 ** 63 - 1


class PSUInt64(_TaggedInt):
    tag, lo, hi = "U64", 0, 2 ** 64 - 1


class PSSingle(float):
    tag = "Sg"


class _TaggedStr(str):
    tag = "S"

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__, str.__repr__(self))


class PSChar(_TaggedStr):
    tag = "C"

    def __new__(cls, value: str | int):
        if isinstance(value, int):
            value = chr(value)
        if len(value) != 1:
            raise ValueError("a Char holds exactly one character")
        return super().__new__(cls, value)


class PSUri(_TaggedStr):
    tag = "URI"


class PSXml(_TaggedStr):
    tag = "XD"


class PSScriptBlock(_TaggedStr):
    tag = "SBK"


class PSSecureString(_TaggedStr):
    """The encrypted (base64) text of an SS element; not decrypted here."""
    tag = "SS"


class PSVersion:
    """A .NET System.Version: two to four non-negative integer parts."""

    __slots__ = ("parts",)

    def __init__(self, *parts: int | str):
        if len(parts) == 1 and isinstance(parts[0], str):
            text = parts[0].strip()
            try:
                nums = tuple(int(p) for p in text.split("."))
            except ValueError:
                raise CLIXMLError("bad version string %r" % text) from None
        elif len(parts) == 1 and isinstance(parts[0], PSVersion):
            nums = parts[0].parts
        else:
            nums = tuple(int(p) for p in parts)
        if not 2 <= len(nums) <= 4 or any(n < 0 for n in nums):
            raise CLIXMLError("a version has 2 to 4 non-negative parts: %r" % (nums,))
        self.parts = nums

    major = property(lambda self: self.parts[0])
    minor = property(lambda self: self.parts[1])

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)

    def __repr__(self) -> str:
        return "PSVersion(%r)" % str(self)

    def _key(self):
        return self.parts + (-1,) * (4 - len(self.parts))

    def _coerce(self, other):
        if isinstance(other, PSVersion):
            return other
        if isinstance(other, (str, tuple)):
            return PSVersion(*other) if isinstance(other, tuple) else PSVersion(other)
        return NotImplemented

    def __eq__(self, other):
        o = self._coerce(other)
        return o if o is NotImplemented else self.parts == o.parts

    def __lt__(self, other):
        o = self._coerce(other)
        return o if o is NotImplemented else self._key() < o._key()

    def __le__(self, other):
        o = self._coerce(other)
        return o if o is NotImplemented else self._key() <= o._key()

    def __gt__(self, other):
        o = self._coerce(other)
        return o if o is NotImplemented else self._key() > o._key()

    def __ge__(self, other):
        o = self._coerce(other)
        return o if o is NotImplemented else self._key() >= o._key()

    def __hash__(self):
        return hash(self.parts)


class PSDateTime(_dt.datetime):
    """datetime plus the sub-microsecond remainder .NET keeps (0..999 ns)."""

    nanosecond = 0

    @classmethod
    def from_datetime(cls, value: _dt.datetime, nanosecond: int = 0) -> "PSDateTime":
        obj = cls(value.year, value.month, value.day, value.hour, value.minute,
                  value.second, value.microsecond, value.tzinfo, fold=value.fold)
        obj.nanosecond = nanosecond
        return obj


# ---------------------------------------------------------------------------
# Complex objects
# ---------------------------------------------------------------------------

class PSPropertySet(dict):
    """A named nested <MS> (property set) inside extended properties."""


class _PSMeta:
    """Fields shared by every deserialized complex object."""

    type_names: list[str] | None = None
    to_string: str | None = None
    adapted_properties: dict | None = None
    extended_properties: dict | None = None

    def _init_meta(self, type_names=None, to_string=None, adapted=None, extended=None):
        self.type_names = list(type_names) if type_names is not None else None
        self.to_string = to_string
        self.adapted_properties = dict(adapted) if adapted else {}
        self.extended_properties = dict(extended) if extended else {}


class PSObject(_PSMeta):
    """A complex object (<Obj>) that is not a known container.

    ``value`` holds the primitive of an extended primitive object or an enum
    (``None`` otherwise).  Properties are reachable by ``obj["Name"]``,
    ``obj.get("Name")`` or attribute access, extended ones taking precedence.
    """

    def __init__(self, type_names: Iterable[str] | None = None,
                 to_string: str | None = None,
                 adapted_properties: dict | None = None,
                 extended_properties: dict | None = None,
                 value: Any = None):
        self._init_meta(type_names, to_string, adapted_properties, extended_properties)
        self.value = value

    @property
    def properties(self) -> dict:
        merged = dict(self.adapted_properties)
        merged.update(self.extended_properties)
        return merged

    def __contains__(self, name: str) -> bool:
        return name in self.extended_properties or name in self.adapted_properties

    def __getitem__(self, name: str):
        if name in self.extended_properties:
            return self.extended_properties[name]
        if name in self.adapted_properties:
            return self.adapted_properties[name]
        raise KeyError(name)

    def __setitem__(self, name: str, value) -> None:
        if name in self.adapted_properties and name not in self.extended_properties:
            self.adapted_properties[name] = value
        else:
            self.extended_properties[name] = value

    def get(self, name: str, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def __getattr__(self, name: str):
        if name.startswith("_") or name in ("adapted_properties", "extended_properties"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def is_type(self, name: str) -> bool:
        return bool(self.type_names) and name in self.type_names

    def __str__(self) -> str:
        if self.to_string is not None:
            return self.to_string
        if self.value is not None:
            return str(self.value)
        return repr(self)

    def __repr__(self) -> str:
        tn = self.type_names[0] if self.type_names else None
        return "PSObject(type=%r, to_string=%r, value=%r, props=%r)" % (
            tn, self.to_string, self.value, list(self.properties))

    def __eq__(self, other):
        if not isinstance(other, PSObject):
            return NotImplemented
        return (self.type_names == other.type_names and self.to_string == other.to_string
                and self.value == other.value
                and self.adapted_properties == other.adapted_properties
                and self.extended_properties == other.extended_properties)

    __hash__ = None  # mutable


class PSList(_PSMeta, list):
    """A <LST>/<IE> container.  ``kind`` is the element name used."""

    kind = "LST"

    def __init__(self, items: Iterable = (), type_names=None, to_string=None,
                 adapted_properties=None, extended_properties=None, kind: str | None = None):
        list.__init__(self, items)
        self._init_meta(type_names, to_string, adapted_properties, extended_properties)
        if kind:
            self.kind = kind


class PSStack(PSList):
    """A <STK> container; items are listed from the top of the stack."""

    kind = "STK"


class PSQueue(PSList):
    """A <QUE> container; items are listed from the head of the queue."""

    kind = "QUE"


class PSDict(_PSMeta, dict):
    """A <DCT> container."""

    def __init__(self, items=(), type_names=None, to_string=None,
                 adapted_properties=None, extended_properties=None):
        dict.__init__(self, items)
        self._init_meta(type_names, to_string, adapted_properties, extended_properties)

    __hash__ = None


ENUM_BASE_TYPES = ["System.Enum", "System.ValueType", "System.Object"]


def ps_enum(type_name: str, name: str, value: int) -> PSObject:
    """An enum value as PowerShell serializes it (TN, ToString, I32)."""
    return PSObject([type_name] + ENUM_BASE_TYPES, to_string=name, value=int(value))


# ---------------------------------------------------------------------------
# String escaping (MS-PSRP 2.2.5.3.2)
# ---------------------------------------------------------------------------

# C0 and C1 controls, surrogate code points and everything outside the BMP.
_NEEDS_ESCAPE = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\udfff\U00010000-\U0010ffff]")
# An underscore that would otherwise start something looking like an escape.
_UNDERSCORE_X = re.compile("_(?=[xX])")
_ESCAPE_SEQ = re.compile("((?:_[xX][0-9A-Fa-f]{4}_)+)")


def _escape_char(m: re.Match) -> str:
    ch = m.group(0)
    units = ch.encode("utf-16-be", "surrogatepass")
    return "".join("_x%04X_" % int.from_bytes(units[i:i + 2], "big")
                   for i in range(0, len(units), 2))


def encode_string(value: str) -> str:
    """Escape a string for CLIXML element text or an N attribute.

    An underscore is escaped only when an ``x`` follows it (compared without
    regard to case), which is enough to keep the result unambiguous.
    """
    value = _UNDERSCORE_X.sub("_x005F_", value)
    return _NEEDS_ESCAPE.sub(_escape_char, value)


def _unescape_run(m: re.Match) -> str:
    run = m.group(1)
    units = bytes.fromhex("".join(run[i + 2:i + 6] for i in range(0, len(run), 7)))
    return units.decode("utf-16-be", "surrogatepass")


def decode_string(value: str | None) -> str:
    if not value:
        return ""
    if "_" not in value:
        return value
    text = _ESCAPE_SEQ.sub(_unescape_run, value)
    # Recombine surrogate pairs that were escaped one unit at a time.
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return text


# ---------------------------------------------------------------------------
# DateTime and Duration text forms
# ---------------------------------------------------------------------------

_DT_RE = re.compile(
    r"^\s*(?P<y>-?\d{4,})-(?P<mo>\d\d)-(?P<d>\d\d)"
    r"(?:T(?P<h>\d\d):(?P<mi>\d\d)(?::(?P<s>\d\d)(?:\.(?P<f>\d+))?)?)?"
    r"(?P<tz>Z|[+-]\d\d:?\d\d)?\s*$")

_DUR_RE = re.compile(
    r"^\s*(?P<neg>-)?P(?:(?P<Y>\d+)Y)?(?:(?P<Mo>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<H>\d+)H)?(?:(?P<Mi>\d+)M)?(?:(?P<S>\d+(?:\.\d*)?|\.\d+)S)?)?\s*$")


def parse_datetime(text: str) -> PSDateTime:
    m = _DT_RE.match(text)
    if not m:
        raise CLIXMLError("bad DateTime %r" % text)
    frac = (m.group("f") or "").ljust(9, "0")[:9]
    micro, nano = int(frac[:6]), int(frac[6:9])
    tz = None
    tzs = m.group("tz")
    if tzs == "Z":
        tz = _dt.timezone.utc
    elif tzs:
        sign = -1 if tzs[0] == "-" else 1
        digits = tzs[1:].replace(":", "")
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    base = _dt.datetime(int(m.group("y")), int(m.group("mo")), int(m.group("d")),
                        int(m.group("h") or 0), int(m.group("mi") or 0),
                        int(m.group("s") or 0), micro, tz)
    return PSDateTime.from_datetime(base, nano)


def format_datetime(value: _dt.datetime) -> str:
    nano = getattr(value, "nanosecond", 0) or 0
    ticks = value.microsecond * 10 + nano // 100
    text = value.strftime("%Y-%m-%dT%H:%M:%S") + ".%07d" % ticks
    off = value.utcoffset()
    if off is not None:
        if value.tzinfo is _dt.timezone.utc:
            return text + "Z"
        total = int(off.total_seconds() // 60)
        sign = "-" if total < 0 else "+"
        total = abs(total)
        text += "%s%02d:%02d" % (sign, total // 60, total % 60)
    return text


def parse_duration(text: str) -> _dt.timedelta:
    m = _DUR_RE.match(text)
    if not m or text.strip() in ("P", "-P") or text.strip().endswith("T"):
        raise CLIXMLError("bad duration %r" % text)
    g = {k: v for k, v in m.groupdict().items()}
    days = int(g["D"] or 0) + 7 * int(g["W"] or 0) + 365 * int(g["Y"] or 0) + 30 * int(g["Mo"] or 0)
    secs = decimal.Decimal(g["S"] or "0")
    micro = (secs * 1000000).to_integral_value(rounding=decimal.ROUND_HALF_EVEN)
    td = _dt.timedelta(days=days, hours=int(g["H"] or 0), minutes=int(g["Mi"] or 0),
                       microseconds=int(micro))
    return -td if g["neg"] else td


def format_duration(value: _dt.timedelta) -> str:
    total_us = (value.days * 86400 + value.seconds) * 1000000 + value.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    days, rem = divmod(total_us, 86400 * 1000000)
    hours, rem = divmod(rem, 3600 * 1000000)
    minutes, rem = divmod(rem, 60 * 1000000)
    seconds, micro = divmod(rem, 1000000)
    out = sign + "P"
    if days:
        out += "%dD" % days
    out += "T"
    if hours:
        out += "%dH" % hours
    if minutes:
        out += "%dM" % minutes
    if micro:
        out += ("%d.%06d" % (seconds, micro)).rstrip("0") + "S"
    elif seconds or not (hours or minutes):
        out += "%dS" % seconds
    return out


# ---------------------------------------------------------------------------
# Deserializer
# ---------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _text(el: ET.Element) -> str:
    return el.text or ""


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise CLIXMLError("bad boolean %r" % text)


def _int_of(cls):
    def conv(text: str):
        v = int(text.strip())
        return v if cls is int else cls(v)
    return conv


def _base64(text: str) -> bytes:
    return base64.b64decode("".join(text.split()))


_PRIMITIVES = {
    "S": lambda t: decode_string(t),
    "C": lambda t: PSChar(int(t.strip())),
    "B": _bool,
    "DT": lambda t: parse_datetime(t),
    "TS": lambda t: parse_duration(t),
    "By": _int_of(PSByte),
    "SB": _int_of(PSSByte),
    "Sbyte": _int_of(PSSByte),
    "U16": _int_of(PSUInt16),
    "I16": _int_of(PSInt16),
    "U32": _int_of(PSUInt32),
    "I32": _int_of(int),
    "U64": _int_of(PSUInt64),
    "I64": _int_of(PSInt64),
    "Sg": lambda t: PSSingle(_float(t)),
    "Db": lambda t: _float(t),
    "D": lambda t: decimal.Decimal(t.strip()),
    "BA": _base64,
    "G": lambda t: uuid.UUID(t.strip()),
    "URI": lambda t: PSUri(decode_string(t)),
    "Version": lambda t: PSVersion(t.strip()),
    "XD": lambda t: PSXml(decode_string(t)),
    "SBK": lambda t: PSScriptBlock(decode_string(t)),
    "SS": lambda t: PSSecureString(t.strip()),
}

_CONTAINERS = {"LST": PSList, "IE": PSList, "STK": PSStack, "QUE": PSQueue, "DCT": PSDict}


def _float(text: str) -> float:
    t = text.strip()
    specials = {"INF": "inf", "-INF": "-inf", "NaN": "nan", "Infinity": "inf",
                "-Infinity": "-inf"}
    return float(specials.get(t, t))


class Deserializer:
    """One deserializer lifetime: RefIds and TN ids resolve within it."""

    def __init__(self):
        self.objects: dict[str, Any] = {}
        self.type_names: dict[str, list[str]] = {}

    def deserialize(self, data: str | bytes | ET.Element):
        if isinstance(data, ET.Element):
            return self.element(data)
        if isinstance(data, (bytes, bytearray)):
            data = bytes(data)
            if data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            data = data.decode("utf-8")
        data = data.lstrip("\ufeff")
        try:
            root = ET.fromstring(data)
        except ET.ParseError as e:
            raise CLIXMLError("not well-formed CLIXML: %s" % e) from None
        return self.element(root)

    def element(self, el: ET.Element):
        tag = _local(el.tag)
        if tag == "Nil":
            return None
        if tag in _PRIMITIVES:
            try:
                return _PRIMITIVES[tag](_text(el))
            except (ValueError, OverflowError) as e:
                raise CLIXMLError("bad <%s> value %r: %s" % (tag, el.text, e)) from None
        if tag == "Ref":
            ref = el.get("RefId")
            if ref not in self.objects:
                raise CLIXMLError("<Ref RefId=%r> names no earlier object" % ref)
            return self.objects[ref]
        if tag == "Obj":
            return self._obj(el)
        if tag == "Objs":
            return [self.element(c) for c in el]
        raise CLIXMLError("unknown CLIXML element <%s>" % tag)

    def _obj(self, el: ET.Element):
        type_names = None
        to_string = None
        container_el = None
        primitive_el = None
        props_el = None
        ms_el = None
        for child in el:
            t = _local(child.tag)
            if t == "TN":
                names = [decode_string(_text(x)) for x in child if _local(x.tag) == "T"]
                ref = child.get("RefId")
                if ref is not None:
                    self.type_names[ref] = names
                type_names = names
            elif t == "TNRef":
                ref = child.get("RefId")
                if ref not in self.type_names:
                    raise CLIXMLError("<TNRef RefId=%r> names no earlier <TN>" % ref)
                type_names = list(self.type_names[ref])
            elif t == "ToString":
                to_string = decode_string(_text(child))
            elif t == "Props":
                props_el = child
            elif t == "MS":
                ms_el = child
            elif t in _CONTAINERS:
                container_el = child
            else:
                primitive_el = child

        ref_id = el.get("RefId")
        if container_el is not None:
            ctag = _local(container_el.tag)
            cls = _CONTAINERS[ctag]
            obj = cls(type_names=type_names, to_string=to_string)
            if cls is PSList:
                obj.kind = ctag
            if ref_id is not None:
                self.objects[ref_id] = obj
            if cls is PSDict:
                for en in container_el:
                    if _local(en.tag) != "En":
                        raise CLIXMLError("<DCT> may only contain <En>")
                    key = value = None
                    have_key = False
                    for part in en:
                        n = part.get("N")
                        if n == "Key":
                            key = self.element(part)
                            have_key = True
                        elif n == "Value":
                            value = self.element(part)
                    if not have_key:
                        raise CLIXMLError("<En> without a Key")
                    try:
                        obj[key] = value
                    except TypeError:
                        obj[_Unhashable(key)] = value
            else:
                obj.extend(self.element(c) for c in container_el)
        else:
            obj = PSObject(type_names=type_names, to_string=to_string)
            if ref_id is not None:
                self.objects[ref_id] = obj
            if primitive_el is not None:
                obj.value = self.element(primitive_el)
        if props_el is not None:
            obj.adapted_properties = self._members(props_el)
        if ms_el is not None:
            obj.extended_properties = self._members(ms_el)
        return obj

    def _members(self, el: ET.Element) -> dict:
        out: dict = {}
        for child in el:
            name = child.get("N")
            name = decode_string(name) if name is not None else None
            if _local(child.tag) == "MS":
                out[name] = PSPropertySet(self._members(child))
            else:
                out[name] = self.element(child)
        return out


class _Unhashable:
    """Wraps a dictionary key Python cannot hash (e.g. a list)."""

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return id(self)

    def __repr__(self):
        return "_Unhashable(%r)" % (self.value,)


def deserialize(data: str | bytes | ET.Element):
    """Deserialize one CLIXML object (an <Objs> root gives a list)."""
    return Deserializer().deserialize(data)


def deserialize_objs(data: str | bytes) -> list:
    """Deserialize an Export-Clixml style ``<Objs>`` document."""
    value = deserialize(data)
    return value if isinstance(value, list) and not isinstance(value, PSList) else [value]


# ---------------------------------------------------------------------------
# Serializer
# ---------------------------------------------------------------------------

_LIST_TYPES = ["System.Object[]", "System.Array", "System.Object"]
_HASHTABLE_TYPES = ["System.Collections.Hashtable", "System.Object"]

_I32_MIN, _I32_MAX = -(2 ** 31), 2 ** 31 - 1
_I64_MIN, _I64_MAX = -(2 ** 63), 2 ** 63 - 1


def _xml_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_attr(s: str) -> str:
    return _xml_text(s).replace('"', "&quot;")


def _float_text(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "INF" if v > 0 else "-INF"
    return repr(float(v))


class Serializer:
    """One serializer lifetime: RefIds and TN ids are numbered from 0."""

    def __init__(self):
        self._next_ref = 0
        self._next_tn = 0
        self._tn_ids: dict[tuple, int] = {}
        self._seen: dict[int, int] = {}
        self._keep: list = []  # keep serialized objects alive so id() stays unique

    def serialize(self, value, name: str | None = None) -> str:
        parts: list[str] = []
        self._write(parts, value, name)
        return "".join(parts)

    # -- helpers ------------------------------------------------------------

    @staticmethod
    def _n(name: str | None) -> str:
        return "" if name is None else ' N="%s"' % _xml_attr(encode_string(name))

    def _prim(self, out, tag, text, name):
        if text == "":
            out.append("<%s%s />" % (tag, self._n(name)))
        else:
            out.append("<%s%s>%s</%s>" % (tag, self._n(name), text, tag))

    def _primitive(self, value) -> tuple[str, str] | None:
        """(tag, escaped text) when ``value`` is a primitive, else None."""
        if isinstance(value, bool):
            return "B", "true" if value else "false"
        if isinstance(value, _TaggedInt):
            return value.tag, str(int(value))
        if isinstance(value, int):
            if _I32_MIN <= value <= _I32_MAX:
                return "I32", str(value)
            if _I64_MIN <= value <= _I64_MAX:
                return "I64", str(value)
            if 0 <= value < 2 ** 64:
                return "U64", str(value)
            raise OverflowError("integer %d does not fit any CLIXML type" % value)
        if isinstance(value, PSSingle):
            return "Sg", _float_text(value)
        if isinstance(value, float):
            return "Db", _float_text(value)
        if isinstance(value, decimal.Decimal):
            return "D", str(value)
        if isinstance(value, PSChar):
            return "C", str(ord(value))
        if isinstance(value, PSSecureString):
            return "SS", _xml_text(str(value))
        if isinstance(value, _TaggedStr):
            return value.tag, _xml_text(encode_string(str(value)))
        if isinstance(value, str):
            return "S", _xml_text(encode_string(value))
        if isinstance(value, _dt.datetime):
            return "DT", format_datetime(value)
        if isinstance(value, _dt.timedelta):
            return "TS", format_duration(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "BA", base64.b64encode(bytes(value)).decode("ascii")
        if isinstance(value, uuid.UUID):
            return "G", str(value)
        if isinstance(value, PSVersion):
            return "Version", str(value)
        return None

    def _type_names(self, out, names):
        if not names:
            return
        key = tuple(names)
        if key in self._tn_ids:
            out.append('<TNRef RefId="%d" />' % self._tn_ids[key])
            return
        tid = self._next_tn
        self._next_tn += 1
        self._tn_ids[key] = tid
        out.append('<TN RefId="%d">' % tid)
        for n in names:
            out.append("<T>%s</T>" % _xml_text(encode_string(n)))
        out.append("</TN>")

    def _members(self, out, tag, members, name=None):
        out.append("<%s%s>" % (tag, self._n(name)))
        for k, v in members.items():
            if isinstance(v, PSPropertySet):
                self._members(out, "MS", v, k)
            else:
                self._write(out, v, k)
        out.append("</%s>" % tag)

    # -- main dispatch ------------------------------------------------------

    def _write(self, out: list[str], value, name: str | None) -> None:
        if value is None:
            out.append("<Nil%s />" % self._n(name))
            return
        prim = self._primitive(value)
        if prim is not None:
            self._prim(out, prim[0], prim[1], name)
            return
        if isinstance(value, _Unhashable):
            self._write(out, value.value, name)
            return

        if id(value) in self._seen:
            out.append('<Ref%s RefId="%d" />' % (self._n(name), self._seen[id(value)]))
            return
        ref = self._next_ref
        self._next_ref += 1
        self._seen[id(value)] = ref
        self._keep.append(value)

        out.append('<Obj%s RefId="%d">' % (self._n(name), ref))
        meta = value if isinstance(value, _PSMeta) else None
        if isinstance(value, PSObject):
            self._type_names(out, value.type_names)
        elif isinstance(value, dict):
            self._type_names(out, meta.type_names if meta and meta.type_names is not None
                             else _HASHTABLE_TYPES)
        elif isinstance(value, (list, tuple, set, frozenset)):
            self._type_names(out, meta.type_names if meta and meta.type_names is not None
                             else _LIST_TYPES)
        else:
            raise TypeError("cannot serialize %s to CLIXML" % type(value).__name__)

        if meta is not None and meta.to_string is not None:
            out.append("<ToString>%s</ToString>" % _xml_text(encode_string(meta.to_string)))

        if isinstance(value, PSObject):
            if value.value is not None:
                self._write(out, value.value, None)
        elif isinstance(value, dict):
            if value:
                out.append("<DCT>")
                for k, v in value.items():
                    out.append("<En>")
                    self._write(out, k, "Key")
                    self._write(out, v, "Value")
                    out.append("</En>")
                out.append("</DCT>")
            else:
                out.append("<DCT />")
        else:
            kind = getattr(value, "kind", "LST")
            items = list(value)
            if items:
                out.append("<%s>" % kind)
                for item in items:
                    self._write(out, item, None)
                out.append("</%s>" % kind)
            else:
                out.append("<%s />" % kind)

        if meta is not None and meta.adapted_properties:
            self._members(out, "Props", meta.adapted_properties)
        if meta is not None and meta.extended_properties:
            self._members(out, "MS", meta.extended_properties)
        out.append("</Obj>")


def serialize(value, name: str | None = None) -> str:
    """Serialize one value to CLIXML text (no XML declaration, no namespace)."""
    return Serializer().serialize(value, name)


def serialize_objs(values: Iterable) -> str:
    """An Export-Clixml style document holding ``values``."""
    s = Serializer()
    body = "".join(s.serialize(v) for v in values)
    return '<Objs Version="1.1.0.1" xmlns="%s">%s</Objs>' % (CLIXML_NS, body)
