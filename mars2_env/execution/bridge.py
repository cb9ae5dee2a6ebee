"""The assert harness's bridge: the test code and the program run in two processes.

An assert-kind test (HumanEval's ``check(candidate)``, MBPP's ``assert f(x) == y`` lines) is
Python that calls into the program. It runs in the *test process*, which never executes a line
of the program; the program runs in the *program process*, forked from the test process before
the test code is read (see `harness.run_assert`). Each name the test takes from the program,
each call, attribute read and iteration is a request over a socket; arguments and results cross
as tagged JSON (`grader.encode_value`), so the test process only ever holds plain data (None,
bool, int, float, str and lists, tuples, dicts, sets of them; complex numbers, builtin types
and ``re.Match`` values too, see `grader`) and `Remote` handles to the program's other objects.
A handle can be called, read (attributes, items, ``len``, iteration, ``str``), written
(attributes, items) and passed back, which only asks the program for more data or changes the
program's own objects; it is never compared and
has no truth value: a test that tries fails (`NotJudged`), because a program object's answer
to "are you equal to the expected value?" proves nothing.

LeetCode's ``ListNode`` / ``TreeNode`` values the test builds (`nodes`) cross to the program as
node graphs that the program side rebuilds; nodes the program returns stay handles, which the
test's own ``is_same_list`` / ``is_same_tree`` walk by attribute reads.

The test side trusts nothing it receives: messages are size-capped and strictly decoded, and
the first thing that goes wrong (the program exits, dies, sends a malformed or oversized
message, or returns something the test tries to judge) is remembered in ``Bridge.failure``, so
the test cannot pass even if its own code swallows the exception. The program side may only
*call* the test's own functions it was handed (a lambda passed as an argument), nothing else.
"""

from __future__ import annotations

import builtins
import json
import os
import struct
import sys
from typing import Any

from mars2_env.execution import nodes
from mars2_env.execution.grader import decode_value, encode_value

_LEN = struct.Struct("<I")
_NO_MAPPING = (StopIteration, StopAsyncIteration)  # would end the test's loops silently


class NotJudged(TypeError):
    """The test compared (or took the truth value of) an object outside the value codec."""


class ProgramError(Exception):
    """The program raised an exception that has no builtin counterpart in the test process."""


class ProgramGone(BaseException):
    """The program process ended or broke the protocol; the test can no longer pass.

    A BaseException, so a test's ``except Exception`` does not carry on without the program
    (and `Bridge.failure` is set anyway).
    """


class Remote:
    """A program object held by reference in the test process; its code never runs here."""

    __slots__ = ("_bridge", "_id", "_type")

    def __init__(self, bridge: Bridge, hid: int, type_name: str):
        for slot, value in (("_bridge", bridge), ("_id", hid), ("_type", type_name)):
            object.__setattr__(self, slot, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        b = self._bridge
        return b.request({"op": "call", "h": self._id, "args": b.encode(list(args)),
                          "kw": [[k, b.encode(v)] for k, v in kwargs.items()]})

    def __getattr__(self, name: str) -> Any:
        if name in Remote.__slots__:  # not set yet (a copy made without __init__)
            raise AttributeError(name)
        return self._bridge.request({"op": "getattr", "h": self._id, "name": name})

    def __setattr__(self, name: str, value: Any) -> None:
        """``obj.attr = value`` on the program's object (MBPP's set-up code links the
        program's tree nodes this way); the value crosses like an argument."""
        if name in Remote.__slots__:  # a copy being made (copy.copy)
            object.__setattr__(self, name, value)
            return
        b = self._bridge
        b.request({"op": "setattr", "h": self._id, "name": name, "value": b.encode(value)})

    def __setitem__(self, key: Any, value: Any) -> None:
        b = self._bridge
        b.request({"op": "setitem", "h": self._id, "key": b.encode(key), "value": b.encode(value)})

    def __iter__(self):
        items = self._bridge.request({"op": "iter", "h": self._id})
        if type(items) is not list:
            self._bridge.protocol_error("iteration did not answer a list")
        return iter(items)

    def __len__(self) -> int:
        n = self._bridge.request({"op": "len", "h": self._id})
        if type(n) is not int or n < 0:
            self._bridge.protocol_error("len() did not answer a non-negative int")
        return n

    def __getitem__(self, key: Any) -> Any:
        return self._bridge.request({"op": "getitem", "h": self._id, "key": self._bridge.encode(key)})

    def __contains__(self, item: Any) -> bool:
        return item in list(self)  # judged here, on the items as data

    def __str__(self) -> str:
        text = self._bridge.request({"op": "str", "h": self._id})
        if type(text) is not str:
            self._bridge.protocol_error("str() did not answer a str")
        return text

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return f"<{self._type} object of the program>"

    __hash__ = object.__hash__  # by identity: a handle can be a dict key or set member

    def _not_judged(self, what: str):
        raise self._bridge.not_judged(self, what)

    def __eq__(self, other: object) -> bool:
        self._not_judged("compared (==)")

    def __ne__(self, other: object) -> bool:
        self._not_judged("compared (!=)")

    def __lt__(self, other: object) -> bool:
        self._not_judged("compared (<)")

    def __le__(self, other: object) -> bool:
        self._not_judged("compared (<=)")

    def __gt__(self, other: object) -> bool:
        self._not_judged("compared (>)")

    def __ge__(self, other: object) -> bool:
        self._not_judged("compared (>=)")

    def __bool__(self) -> bool:
        self._not_judged("took the truth value of")


class _Callback:
    """Program side: a function of the test process the program was handed as an argument."""

    __slots__ = ("_bridge", "_id")

    def __init__(self, bridge: Bridge, hid: int):
        self._bridge, self._id = bridge, hid

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        b = self._bridge
        return b.request({"op": "call", "a": self._id, "args": b.encode(list(args)),
                          "kw": [[k, b.encode(v)] for k, v in kwargs.items()]})


class Bridge:
    """One end of the socket between the test process (``trusted``) and the program process.

    ``max_message`` caps what the test side reads in one message (the output limit);
    ``namespace`` is the program's globals (program side).
    """

    def __init__(self, fd: int, trusted: bool, max_message: int = 1 << 25,
                 namespace: dict | None = None, format_traceback=None):
        self.fd, self.trusted, self.max_message = fd, trusted, max_message
        self.namespace = namespace if namespace is not None else {}
        self.format_traceback = format_traceback or (lambda e: f"{type(e).__name__}: {e}")
        self.objects: dict[int, Any] = {}   # what this side handed out, by handle id
        self._ids: dict[int, int] = {}      # id(object) -> handle id
        self._remotes: dict[int, Remote] = {}
        self.failure: tuple[str, str] | None = None  # (kind, why) once the test cannot pass
        self.closed = False
        # program side: the node classes a test's node graph is rebuilt with when the program
        # defines none of its own (captured now, before any program code runs)
        self._node_classes = {"L": nodes.ListNode, "T": nodes.TreeNode}

    # ------------------------------------------------------------------ failures (test side)
    def fail(self, kind: str, why: str) -> None:
        """Remember the first reason the test cannot pass (kind: wrong | error | output)."""
        if self.failure is None:
            self.failure = (kind, why)

    def not_judged(self, obj: Remote, what: str) -> NotJudged:
        why = (f"the test {what} a {obj._type} object returned by the program; only None, "
               "bool, int, float, str and lists, tuples, dicts and sets of them are judged")
        self.fail("wrong", why)
        return NotJudged(why)

    def protocol_error(self, why: str) -> None:
        self.fail("error", f"the program process broke the test protocol: {why}")
        raise ProgramGone(why)

    # ------------------------------------------------------------------ values
    def encode(self, value: Any) -> Any:
        return encode_value(value, export=self._export)

    def _export(self, obj: Any) -> Any:
        if isinstance(obj, Remote) and obj._bridge is self:
            return {"h": obj._id}  # the program's own object, going back
        if isinstance(obj, _Callback) and obj._bridge is self:
            return {"a": obj._id}
        if self.trusted and type(obj) in nodes.NODE_TYPES:  # the test's ListNode / TreeNode
            return {"n": nodes.encode_nodes(obj, self.encode)}
        hid = self._ids.get(id(obj))
        if hid is None:
            hid = len(self.objects) + 1
            self.objects[hid] = obj
            self._ids[id(obj)] = hid
        return {"a": hid} if self.trusted else {"h": [hid, type(obj).__name__]}

    def decode(self, data: Any) -> Any:
        try:
            return decode_value(data, resolve=self._resolve)
        except (TypeError, ValueError, KeyError, RecursionError) as e:
            if self.trusted:
                self.protocol_error(f"malformed value ({e})")
            raise

    def _resolve(self, tag: str, payload: Any) -> Any:
        if self.trusted:
            if tag == "a":  # one of ours coming back
                if type(payload) is int and payload in self.objects:
                    return self.objects[payload]
                raise ValueError("unknown test handle")
            if (tag == "h" and type(payload) is list and len(payload) == 2
                    and type(payload[0]) is int and type(payload[1]) is str):
                r = self._remotes.get(payload[0])
                if r is None:
                    r = self._remotes[payload[0]] = Remote(self, payload[0], payload[1][:100])
                return r
            raise ValueError("malformed program handle")
        if tag == "h":
            return self.objects[payload]
        if tag == "n":
            return nodes.decode_nodes(payload, self.decode, self._program_node_classes())
        return _Callback(self, int(payload))

    def _program_node_classes(self) -> dict[str, type]:
        """Program side: the classes a test's nodes are rebuilt with: the program's own
        ``ListNode`` / ``TreeNode`` when it defines them (rllm's ``list_node`` builds those),
        else the prelude's."""
        found = dict(self._node_classes)
        for tag, name in (("L", "ListNode"), ("T", "TreeNode")):
            cls = self.namespace.get(name)
            if isinstance(cls, type):
                found[tag] = cls
        return found

    # ------------------------------------------------------------------ messages
    def send(self, msg: dict) -> None:
        data = json.dumps(msg, allow_nan=True, separators=(",", ":")).encode()
        view = memoryview(_LEN.pack(len(data)) + data)
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError:
            self._gone("the program process closed the connection")

    def recv(self) -> dict:
        head = self._read(_LEN.size)
        (n,) = _LEN.unpack(head)
        if self.trusted and n > self.max_message:
            self.fail("output", f"the program sent a value of {n} bytes, over the output limit "
                                f"({self.max_message} bytes)")
            raise ProgramGone("message too large")
        raw = self._read(n)
        try:
            msg = json.loads(raw)
        except (ValueError, RecursionError) as e:
            if not self.trusted:
                raise
            self.protocol_error(f"unreadable message ({type(e).__name__})")
        if type(msg) is not dict:
            self.protocol_error("a message that is not an object")
        return msg

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = os.read(self.fd, min(n - len(buf), 1 << 20))
            except OSError:
                chunk = b""
            if not chunk:
                self._gone("the program process ended during the test")
            buf += chunk
        return bytes(buf)

    def _gone(self, why: str):
        self.closed = True
        if self.trusted:
            self.fail("error", why)
        raise ProgramGone(why)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.closed = True

    # ------------------------------------------------------------------ requests
    def request(self, msg: dict) -> Any:
        """Send a request and return the peer's answer, serving its requests meanwhile."""
        if self.trusted and self.closed:
            raise ProgramGone("the program process is gone")
        self.send(msg)
        while True:
            reply = self.recv()
            if "op" in reply:
                self.serve(reply)
                continue
            return self._answer(reply)

    def lookup(self, name: str) -> Any:
        """Test side: the program's global ``name`` (KeyError when it has none)."""
        return self.request({"op": "name", "name": name})

    def _answer(self, reply: dict) -> Any:
        if "r" in reply:
            return self.decode(reply["r"])
        if "missing" in reply:
            raise KeyError(reply.get("name", ""))
        if "module" in reply and self.trusted:
            return self._module(str(reply["module"]), str(reply.get("name", "")))
        if "raise" in reply:
            raise self.program_exception(reply)
        if "exit" in reply:
            if self.trusted:
                self.fail("error", f"the program exited (status {reply['exit']!r}) while the "
                                   "test was calling it")
            raise ProgramGone("the program exited")
        if self.trusted:
            self.protocol_error("an answer of no known kind")
        raise RuntimeError("an answer of no known kind")

    def _module(self, module: str, name: str) -> Any:
        """A module the program imported: the test process's own copy when the server loaded
        it (one the program may have patched is never used), else a handle to the program's.
        Nothing is imported on the program's say-so."""
        mod = sys.modules.get(module)
        if mod is None:
            return self.request({"op": "name", "name": name, "ref": True})
        return mod

    def program_exception(self, reply: dict) -> BaseException:
        """The exception the program raised, as an instance of the same builtin class where
        there is one (a test may expect ``ValueError``), else `ProgramError`."""
        name, text, tb = (str(reply.get(k, ""))[:10000] for k in ("raise", "msg", "tb"))
        cls = getattr(builtins, name, None)
        exc: BaseException | None = None
        if (isinstance(cls, type) and issubclass(cls, Exception)
                and not issubclass(cls, _NO_MAPPING)):
            try:
                exc = cls(text)
            except Exception:
                exc = None
        if exc is None:
            exc = ProgramError(f"{name}: {text}" if text else name)
        exc.program_traceback = tb or f"{name}: {text}"  # type: ignore[attr-defined]
        return exc

    # ------------------------------------------------------------------ serving
    def serve(self, msg: dict) -> None:
        """Answer one request of the peer."""
        if self.trusted:
            self._serve_callback(msg)
            return
        try:
            value = self._perform(msg)
        except SystemExit as e:
            self.send({"exit": e.code if isinstance(e.code, int) else 1})
            raise
        except _Missing:
            self.send({"missing": True, "name": msg.get("name")})
            return
        except _Module as m:
            self.send({"module": m.args[0], "name": msg.get("name")})
            return
        except BaseException as e:
            self.send(self._raised(e))
            return
        try:
            self.send({"r": self.encode(value)})
        except ProgramGone:
            raise
        except BaseException as e:  # the value could not be encoded
            self.send(self._raised(e))

    def _raised(self, e: BaseException) -> dict:
        try:
            text = str(e)[:2000]
        except BaseException:
            text = ""
        try:
            tb = self.format_traceback(e)
        except BaseException:
            tb = type(e).__name__
        return {"raise": type(e).__name__, "msg": text, "tb": tb}

    def _perform(self, msg: dict) -> Any:
        """Program side: carry out one request on the program's objects."""
        op = msg.get("op")
        if op == "name":
            name = msg["name"]
            if name not in self.namespace:
                raise _Missing
            value = self.namespace[name]
            if type(value).__name__ == "module" and not msg.get("ref"):
                raise _Module(getattr(value, "__name__", name))
            return value
        if op == "call" and "a" in msg:
            raise TypeError("the test process calls only what it handed out")
        target = self.objects[msg["h"]]
        if op == "call":
            args = self.decode(msg.get("args", []))
            kwargs = {str(k): self.decode(v) for k, v in msg.get("kw", [])}
            return target(*args, **kwargs)
        if op == "getattr":
            return getattr(target, msg["name"])
        if op == "setattr":
            setattr(target, str(msg["name"]), self.decode(msg["value"]))
            return None
        if op == "setitem":
            target[self.decode(msg["key"])] = self.decode(msg["value"])
            return None
        if op == "iter":
            return list(target)
        if op == "len":
            return len(target)
        if op == "getitem":
            return target[self.decode(msg["key"])]
        if op == "str":
            return str(target)
        raise TypeError(f"unknown request {op!r}")

    def _serve_callback(self, msg: dict) -> None:
        """Test side: the program calls a function of the test it was given, nothing else."""
        fn = self.objects.get(msg.get("a")) if type(msg.get("a")) is int else None
        if msg.get("op") != "call" or fn is None:
            self.send({"raise": "TypeError", "msg": "the program may only call functions the test "
                                                    "passed to it"})
            return
        args, kw = msg.get("args", []), msg.get("kw", [])
        if type(args) is not list or type(kw) is not list:
            self.protocol_error("malformed call arguments")
        args = self.decode(args)
        kwargs = {}
        for pair in kw:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                self.protocol_error("malformed keyword arguments")
            kwargs[pair[0]] = self.decode(pair[1])
        try:
            value = fn(*args, **kwargs)
        except Exception as e:
            self.send({"raise": type(e).__name__, "msg": str(e)[:2000]})
            return
        self.send({"r": self.encode(value)})

    def serve_forever(self) -> None:
        """Program side: answer requests until the test process closes its end."""
        while True:
            try:
                msg = self.recv()
            except ProgramGone:
                return
            self.serve(msg)


class _Missing(Exception):
    """Program side: the program has no such global."""


class _Module(Exception):
    """Program side: the global is a module (the test process uses its own copy)."""
