"""The zygote: a copy of the warm server whose only job is to fork the test children.

A fork write-protects every page of the forking process; while the child lives, each page the
parent then writes is copied. The server does real work between forks (messages, results,
bookkeeping) and would pay a few hundred page copies per test. The zygote, forked once from
the server after the imports, does nearly nothing between forks, so it pays almost none, and
the server, which no longer forks, pays none at all.

It talks to the server over a SOCK_SEQPACKET socket:
``F`` + set-up bytes + fds (stdin, stdout, stderr, status memfds, go-pipe read end) -> fork a
waiting child, answer its pid; ``R`` + pids -> reap those (exited) children; ``S`` + uid +
pids -> kill every process of that sandbox uid, then kill and reap every child except those
pids (left-overs of a test), answer ``s``. End of file -> kill every child and exit. Exit statuses are read by the server from ``/proc/PID/stat`` of the
zombie before it asks for the reap, so no answer is needed on the common path.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
from collections.abc import Callable

from mars2_env.execution import sandbox

OP_FORK, OP_REAP, OP_SWEEP = b"F", b"R", b"S"
_PIDS = struct.Struct("<q")


def pack_pids(op: bytes, pids) -> bytes:
    return op + b"".join(_PIDS.pack(p) for p in pids)


def unpack_pids(data: bytes) -> list[int]:
    return [_PIDS.unpack_from(data, i)[0] for i in range(1, len(data), _PIDS.size)]


def serve(sock: socket.socket, box: sandbox.Sandbox, fork: Callable[[], int],
          child: Callable[[tuple[int, ...], bytes], None]) -> None:
    """The zygote's loop (never returns)."""
    sandbox.prctl(sandbox.PR_SET_CHILD_SUBREAPER, 1)  # orphans of a test come back here
    sandbox.prctl(sandbox.PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the server
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 4096, 8)
        except OSError:
            msg, fds = b"", []
        op = msg[:1]
        if op == OP_FORK:
            try:
                pid = fork()
            except OSError:
                pid = -1
            if pid == 0:
                sock.close()
                child(tuple(fds), msg[1:])
            for fd in fds:
                os.close(fd)
            sock.send(_PIDS.pack(pid))
        elif op == OP_REAP:
            for pid in unpack_pids(msg):
                sandbox.reap(pid)
        elif op == OP_SWEEP:
            uid, *keep = unpack_pids(msg)
            sandbox.kill_children([uid] if uid >= 0 else [], keep=set(keep))
            sock.send(b"s")
        else:  # the server went away
            sandbox.kill_children(box.uids or ())
            os._exit(0)
