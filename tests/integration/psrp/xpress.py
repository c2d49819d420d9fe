"""The WinRM xpress stream framing (MS-WSMV 3.1.4.1.31.6) for the client.

Each framed payload is a run of chunks: u16 LE (uncompressed length - 1),
u16 LE (payload length - 1), payload; a payload as long as the data is
stored as is, otherwise it is MS-XCA LZ77+Huffman.  The client stores
its chunks, or hands them to an external encoder; it decodes stored
chunks only (the server under test stores its output) and refuses the
rest loudly.
"""
import struct

CHUNK = 65536


def frame_stored(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), CHUNK):
        part = data[i:i + CHUNK]
        out += struct.pack("<HH", len(part) - 1, len(part) - 1) + part
    return bytes(out)


class CompressedChunk(ValueError):
    """A chunk was LZ77+Huffman-compressed; this decoder only unframes."""


def unframe(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("truncated xpress chunk header")
        ulen, plen = struct.unpack_from("<HH", data, pos)
        ulen += 1
        plen += 1
        pos += 4
        if pos + plen > len(data):
            raise ValueError("xpress chunk runs past the payload")
        if plen != ulen:
            raise CompressedChunk("compressed chunk (%d -> %d)" % (plen, ulen))
        out += data[pos:pos + plen]
        pos += plen
    return bytes(out)
