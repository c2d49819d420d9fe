"""PSRP message and fragment framing (MS-PSRP 2.2.1 and 2.2.4).

A PSRP *message* is a 40-byte header followed by UTF-8 CLIXML:

    u32 LE destination   1 = client, 2 = server (the receiver)
    u32 LE message type  see MessageType
    16 bytes RPID        runspace pool id, .NET GUID byte order
    16 bytes PID         pipeline id, .NET GUID byte order, zero for the pool
    data                 UTF-8 CLIXML; a server may start it with a BOM

Messages travel as *fragments*, each with a 21-byte big-endian header:

    u64 ObjectId, u64 FragmentId, u8 flags (1 = start, 2 = end), u32 length

"GUID byte order" means the first three groups are little-endian, which is
what Python's ``uuid.UUID.bytes_le`` produces.  The textual form of a GUID
used by this package is always the .NET view of those bytes.
"""

from __future__ import annotations

import enum
import itertools
import struct
import threading
import uuid
from dataclasses import dataclass, field
from typing import Iterable

__all__ = [
    "Destination",
    "MessageType",
    "FRAGMENT_HEADER_SIZE",
    "MESSAGE_HEADER_SIZE",
    "NIL_UUID",
    "Fragment",
    "Message",
    "Fragmenter",
    "Defragmenter",
    "FragmentError",
    "unpack_fragments",
    "pack_fragments",
]

FRAGMENT_HEADER_SIZE = 21
MESSAGE_HEADER_SIZE = 40
NIL_UUID = uuid.UUID(int=0)
UTF8_BOM = b"\xef\xbb\xbf"

_FRAG_HDR = struct.Struct(">QQBI")
_MSG_HDR = struct.Struct("<II16s16s")

FLAG_START = 0x01
FLAG_END = 0x02


class FragmentError(ValueError):
    """Malformed fragment or message bytes."""


class Destination(enum.IntEnum):
    CLIENT = 1
    SERVER = 2


class MessageType(enum.IntEnum):
    SESSION_CAPABILITY = 0x00010002
    INIT_RUNSPACEPOOL = 0x00010004
    PUBLIC_KEY = 0x00010005
    ENCRYPTED_SESSION_KEY = 0x00010006
    PUBLIC_KEY_REQUEST = 0x00010007
    CONNECT_RUNSPACEPOOL = 0x00010008
    SET_MAX_RUNSPACES = 0x00021002
    SET_MIN_RUNSPACES = 0x00021003
    RUNSPACE_AVAILABILITY = 0x00021004
    RUNSPACEPOOL_STATE = 0x00021005
    CREATE_PIPELINE = 0x00021006
    GET_AVAILABLE_RUNSPACES = 0x00021007
    USER_EVENT = 0x00021008
    APPLICATION_PRIVATE_DATA = 0x00021009
    GET_COMMAND_METADATA = 0x0002100A
    RUNSPACEPOOL_INIT_DATA = 0x0002100B
    RESET_RUNSPACE_STATE = 0x0002100C
    RUNSPACEPOOL_HOST_CALL = 0x00021100
    RUNSPACEPOOL_HOST_RESPONSE = 0x00021101
    PIPELINE_INPUT = 0x00041002
    END_OF_PIPELINE_INPUT = 0x00041003
    PIPELINE_OUTPUT = 0x00041004
    ERROR_RECORD = 0x00041005
    PIPELINE_STATE = 0x00041006
    DEBUG_RECORD = 0x00041007
    VERBOSE_RECORD = 0x00041008
    WARNING_RECORD = 0x00041009
    PROGRESS_RECORD = 0x00041010
    INFORMATION_RECORD = 0x00041011
    PIPELINE_HOST_CALL = 0x00041100
    PIPELINE_HOST_RESPONSE = 0x00041101


def _type_name(value: int) -> str:
    try:
        return MessageType(value).name
    except ValueError:
        return "0x%08X" % value


@dataclass
class Fragment:
    object_id: int
    fragment_id: int
    start: bool
    end: bool
    data: bytes

    @property
    def flags(self) -> int:
        return (FLAG_START if self.start else 0) | (FLAG_END if self.end else 0)

    def pack(self) -> bytes:
        return _FRAG_HDR.pack(self.object_id, self.fragment_id, self.flags,
                              len(self.data)) + self.data

    def __len__(self) -> int:
        return FRAGMENT_HEADER_SIZE + len(self.data)


def unpack_fragments(payload: bytes, *, allow_partial: bool = False):
    """Split a byte string holding zero or more whole fragments.

    With ``allow_partial`` the trailing incomplete bytes are returned as the
    second element of a tuple instead of raising.
    """
    frags: list[Fragment] = []
    view = memoryview(payload)
    pos = 0
    total = len(payload)
    while pos < total:
        if total - pos < FRAGMENT_HEADER_SIZE:
            break
        oid, fid, flags, length = _FRAG_HDR.unpack_from(view, pos)
        if flags & ~(FLAG_START | FLAG_END):
            raise FragmentError("reserved fragment flag bits set: 0x%02x" % flags)
        if total - pos - FRAGMENT_HEADER_SIZE < length:
            break
        start = pos + FRAGMENT_HEADER_SIZE
        frags.append(Fragment(oid, fid, bool(flags & FLAG_START),
                              bool(flags & FLAG_END),
                              bytes(view[start:start + length])))
        pos = start + length
    rest = bytes(view[pos:])
    if allow_partial:
        return frags, rest
    if rest:
        raise FragmentError("%d trailing bytes do not form a whole fragment"
                            % len(rest))
    return frags


def pack_fragments(frags: Iterable[Fragment]) -> bytes:
    return b"".join(f.pack() for f in frags)


@dataclass
class Message:
    destination: int
    message_type: int
    rpid: uuid.UUID
    pid: uuid.UUID
    data: bytes = b""
    # Filled in by the Defragmenter: the ObjectId the message travelled under.
    object_id: int | None = field(default=None, compare=False)

    def pack(self) -> bytes:
        return _MSG_HDR.pack(int(self.destination), int(self.message_type),
                             self.rpid.bytes_le, self.pid.bytes_le) + self.data

    @classmethod
    def unpack(cls, raw: bytes, object_id: int | None = None) -> "Message":
        if len(raw) < MESSAGE_HEADER_SIZE:
            raise FragmentError("PSRP message shorter than its 40-byte header "
                                "(%d bytes)" % len(raw))
        dest, mtype, rpid, pid = _MSG_HDR.unpack_from(raw, 0)
        return cls(dest, mtype, uuid.UUID(bytes_le=rpid), uuid.UUID(bytes_le=pid),
                   bytes(raw[MESSAGE_HEADER_SIZE:]), object_id)

    @property
    def text(self) -> str:
        """The CLIXML data as text, without a leading BOM."""
        data = self.data
        if data.startswith(UTF8_BOM):
            data = data[len(UTF8_BOM):]
        return data.decode("utf-8")

    @property
    def has_bom(self) -> bool:
        return self.data.startswith(UTF8_BOM)

    @property
    def type_name(self) -> str:
        return _type_name(self.message_type)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return ("Message(%s, dest=%d, rpid=%s, pid=%s, %d bytes)"
                % (self.type_name, self.destination, self.rpid, self.pid,
                   len(self.data)))


class Fragmenter:
    """Turns messages into fragments no longer than ``max_size`` bytes.

    ``max_size`` counts the 21-byte fragment header.  The ObjectId counter is
    shared by every message the owner sends (a pool and all its pipelines),
    as the protocol requires ObjectIds to be unique per pool.
    """

    def __init__(self, max_size: int = 32768, first_object_id: int = 1):
        self._counter = itertools.count(first_object_id)
        self._lock = threading.Lock()
        self.max_size = max_size

    @property
    def max_size(self) -> int:
        return self._max_size

    @max_size.setter
    def max_size(self, value: int) -> None:
        if value <= FRAGMENT_HEADER_SIZE:
            raise ValueError("fragment size must exceed the 21-byte header")
        self._max_size = value

    def next_object_id(self) -> int:
        with self._lock:
            return next(self._counter)

    def fragment(self, message: Message | bytes,
                 max_size: int | None = None) -> list[Fragment]:
        raw = message.pack() if isinstance(message, Message) else bytes(message)
        size = (max_size or self._max_size) - FRAGMENT_HEADER_SIZE
        if size <= 0:
            raise ValueError("fragment size must exceed the 21-byte header")
        oid = self.next_object_id()
        chunks = [raw[i:i + size] for i in range(0, len(raw), size)] or [b""]
        last = len(chunks) - 1
        return [Fragment(oid, i, i == 0, i == last, c) for i, c in enumerate(chunks)]

    def fragment_many(self, messages: Iterable[Message | bytes],
                      max_size: int | None = None) -> list[Fragment]:
        out: list[Fragment] = []
        for m in messages:
            out.extend(self.fragment(m, max_size))
        return out

    @staticmethod
    def group(frags: Iterable[Fragment], max_payload: int) -> list[bytes]:
        """Pack whole fragments into payloads of at most ``max_payload`` bytes.

        A fragment larger than ``max_payload`` gets a payload of its own.
        """
        payloads: list[bytes] = []
        cur = bytearray()
        for f in frags:
            raw = f.pack()
            if cur and len(cur) + len(raw) > max_payload:
                payloads.append(bytes(cur))
                cur = bytearray()
            cur += raw
        if cur:
            payloads.append(bytes(cur))
        return payloads


class Defragmenter:
    """Reassembles messages from fragments.

    ``feed`` accepts bytes holding any number of fragments (and tolerates a
    fragment cut across two calls).  Fragments of different ObjectIds may be
    interleaved.  Complete messages are returned in completion order.
    """

    def __init__(self, strict: bool = True):
        self._pending: dict[int, tuple[int, bytearray]] = {}
        self._tail = b""
        self.strict = strict

    def feed(self, payload: bytes) -> list[Message]:
        frags, self._tail = unpack_fragments(self._tail + bytes(payload),
                                             allow_partial=True)
        out: list[Message] = []
        for f in frags:
            msg = self.add(f)
            if msg is not None:
                out.append(msg)
        return out

    def add(self, frag: Fragment) -> Message | None:
        if frag.start:
            if frag.fragment_id != 0 and self.strict:
                raise FragmentError("start fragment of object %d has FragmentId %d"
                                    % (frag.object_id, frag.fragment_id))
            if frag.object_id in self._pending and self.strict:
                raise FragmentError("object %d restarted before its end fragment"
                                    % frag.object_id)
            buf = bytearray(frag.data)
            if frag.end:
                self._pending.pop(frag.object_id, None)
                return Message.unpack(bytes(buf), frag.object_id)
            self._pending[frag.object_id] = (frag.fragment_id, buf)
            return None
        entry = self._pending.get(frag.object_id)
        if entry is None:
            raise FragmentError("fragment %d of object %d has no start fragment"
                                % (frag.fragment_id, frag.object_id))
        last_id, buf = entry
        if frag.fragment_id != last_id + 1:
            raise FragmentError("object %d: FragmentId %d follows %d"
                                % (frag.object_id, frag.fragment_id, last_id))
        buf += frag.data
        if frag.end:
            del self._pending[frag.object_id]
            return Message.unpack(bytes(buf), frag.object_id)
        self._pending[frag.object_id] = (frag.fragment_id, buf)
        return None

    @property
    def incomplete(self) -> bool:
        return bool(self._pending or self._tail)

    def reset(self) -> None:
        self._pending.clear()
        self._tail = b""
