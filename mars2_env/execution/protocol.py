"""Framing of the messages between the executor and its worker servers.

A message is a JSON header plus raw byte blobs (program text, test input, captured output),
so large outputs need no escaping and nothing is ever unpickled.
Frame: ``<u32 header length><u32 blob count><header><u64 length><blob>...``.
"""

from __future__ import annotations

import json
import os
import struct

_HEAD = struct.Struct("<II")
_BLOB = struct.Struct("<Q")
MAX_HEADER = 64 << 20


class ChannelClosed(EOFError):
    """The other end of the pipe went away."""


def send(fd: int, header: dict, blobs: tuple[bytes, ...] | list[bytes] = ()) -> None:
    head = json.dumps(header).encode()
    parts = [_HEAD.pack(len(head), len(blobs)), head]
    for b in blobs:
        parts.append(_BLOB.pack(len(b)))
        parts.append(b)
    data = b"".join(parts) if sum(len(p) for p in parts) < (1 << 20) else None
    if data is not None:
        _write_all(fd, data)
    else:
        for p in parts:
            _write_all(fd, p)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed("peer closed the pipe") from None
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes:
    if n == 0:
        return b""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        try:
            k = os.readv(fd, [view[got:]])
        except InterruptedError:
            continue
        except ConnectionResetError:
            k = 0
        if k == 0:
            raise ChannelClosed("peer closed the pipe")
        got += k
    return bytes(buf)


def recv(fd: int) -> tuple[dict, list[bytes]]:
    hlen, nblobs = _HEAD.unpack(_read_exact(fd, _HEAD.size))
    if hlen > MAX_HEADER:
        raise ValueError("corrupt message header")
    header = json.loads(_read_exact(fd, hlen))
    blobs = []
    for _ in range(nblobs):
        (blen,) = _BLOB.unpack(_read_exact(fd, _BLOB.size))
        blobs.append(_read_exact(fd, blen))
    return header, blobs
