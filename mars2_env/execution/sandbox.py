"""Process isolation for one worker server and for each test child it forks.

Three modes:

``namespaces`` (root with CAP_SYS_ADMIN). The worker server, once at start-up, unshares
mount, network, IPC and UTS namespaces and builds a read-only *jail*: a small tmpfs holding
read-only bind mounts of /usr, /etc, the Python installation(s) and site-packages (not the
project tree or its data), a few device nodes, a private procfs with ``hidepid=2`` and a
size-capped tmpfs for the scratch directory. Each test child chroots into the jail and drops
to a uid/gid no other process uses (`server_uids`: two per server, alternating between tests,
so the next test's process can already wait while the last one's left-overs are swept). So
it cannot signal the server or touch files outside its scratch directory, and it has no
network (a fresh net namespace has only a down loopback). Left-over processes (daemonised
grandchildren) are all killed at once with ``kill(-1, SIGKILL)`` from a helper running as
that uid.

``bwrap`` (bubblewrap installed, any user). The worker server runs inside bubblewrap (new
user, pid, net, IPC and UTS namespaces, no capabilities, a read-only view of the system and
the Python installation, a private /tmp); inside, as ``basic``.

``basic`` (anything else). Same rlimits, new session, scrubbed environment and a private
scratch directory, but the program runs as the calling user, can use the network and can
write wherever that user can. Left-overs are found through the zygote being a child
subreaper and killed one by one.

In every mode: memory is limited by RLIMIT_DATA (see `ChildLimits`), POSIX message queues by
RLIMIT_MSGQUEUE = 0, kernel keyrings by a seccomp filter (`deny_keyrings`), and the server and
zygotes are not dumpable. Where the worker has its own IPC namespace (namespaces, bwrap), every
SysV object is removed after each test (`remove_sysv_ipc`) and, as root, SysV shared memory is
capped at the test's memory limit (`limit_sysv_ipc`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import resource
import signal
import stat
import sys
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass

UID_BASE = 0x6D320000  # 1832026112: far above any real account; + 2 * server pid: unique


def server_uids(server_pid: int) -> tuple[int, int]:
    """The two sandbox uids of the server with this pid (tests alternate between them)."""
    return UID_BASE + 2 * server_pid, UID_BASE + 2 * server_pid + 1

def uid_processes(server_pids: Iterable[int]) -> list[int]:
    """Processes (zombies too) running as a sandbox uid of one of these servers: what a leak
    check looks for (other executors on the machine have their own uids)."""
    uids = {uid for pid in server_pids for uid in server_uids(pid)}
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uid = os.stat(f"/proc/{name}").st_uid
            except FileNotFoundError:  # it ended while we looked
                continue
            if uid in uids:
                found.append(int(name))
    return found

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x04000000, 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38

SCRATCH_IN_JAIL = "/tmp/scratch"
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"

_libc = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)  # libc's symbols, without find_library's subprocess
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(libc().unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)
    _check(libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def _prctl(option: int, arg: int) -> None:
    """prctl(2) with one argument (fast path for the child; the function object is cached)."""
    global _prctl_fn
    if _prctl_fn is None:
        _prctl_fn = libc().prctl
        _prctl_fn.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    _check(_prctl_fn(option, arg, 0, 0, 0), "prctl")


_prctl_fn = None


def child_environment(scratch: str) -> dict[str, str]:
    """The whole environment a program sees (nothing of the caller's leaks through)."""
    return {"PATH": CHILD_PATH, "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


prctl = _prctl


def make_fork():
    """A fork for a single-threaded server: glibc's fork() without CPython's at-fork hooks.

    ``os.fork`` re-initialises threading state and runs Python at-fork callbacks (random's
    reseed among them) in every child: about 200 extra copy-on-write page faults, i.e. most of
    a trivial test's cost. With one thread and the GIL held through the call (PyDLL) there is
    nothing to re-initialise. Falls back to ``os.fork`` when other threads exist.
    """
    try:
        fn = ctypes.PyDLL(None, use_errno=True).fork
        fn.restype, fn.argtypes = ctypes.c_int, []
    except (OSError, AttributeError):
        return os.fork

    single = len(os.listdir("/proc/self/task")) == 1  # C-level threads too (the server starts none)

    def fork() -> int:
        if not single or threading.active_count() != 1:
            pid = os.fork()
            if pid == 0:
                random.seed(0)  # undo random's at-fork reseed: same draws in every run
            return pid
        pid = fn()
        if pid < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return pid
    return fork


@dataclass
class ChildLimits:
    """Resource limits of one test child (all in bytes / seconds / counts).

    Memory is limited by ``data`` (RLIMIT_DATA: private writable memory, i.e. what the heap,
    Python objects and thread stacks actually use), not by the address space: RLIMIT_AS also
    counts reserved, untouched ranges (8 MiB per thread stack, 64 MiB per malloc arena), so 8
    threads failed under 256 MB. ``address_space`` (RLIMIT_AS) stays as a loose backstop,
    ``data`` + `ADDRESS_SPACE_SLACK`, for the one kind of memory RLIMIT_DATA does not count:
    shared mappings (``mmap.mmap(-1, n)``, attached SysV segments).
    """

    wall_s: float
    cpu_s: int
    data: int
    address_space: int
    file_size: int
    processes: int
    open_files: int


ADDRESS_SPACE_SLACK = 1 << 30  # reserved-but-untouched room: 64 threads x 8 MiB + 8 arenas x 64 MiB


@dataclass
class Sandbox:
    """A worker server's sandbox state (built once by `setup`)."""

    mode: str                  # "namespaces" | "bwrap" | "basic"
    scratch: str               # scratch dir path as the server sees it
    child_scratch: str         # ... and as the child sees it (after chroot)
    jail: str | None = None    # chroot target (namespaces mode)
    uids: tuple[int, int] | None = None  # sandbox uids (namespaces mode)
    nproc_base: int = 0        # processes the user already runs (basic mode NPROC offset)

    # ---------------------------------------------------------------- once, in the server
    @property
    def private_ipc(self) -> bool:
        """Whether the worker has an IPC namespace of its own (every SysV object in it is a test's)."""
        return self.mode in ("namespaces", "bwrap")

    def prepare_server(self) -> None:
        """Server-wide state every child inherits, so the children need not set it each time."""
        prctl(PR_SET_NO_NEW_PRIVS, 1)  # no set-uid binary can raise a child's privileges
        prctl(PR_SET_DUMPABLE, 0)  # no program can ptrace or read the memory of server or zygote
        os.environ.clear()
        os.environ.update(child_environment(self.child_scratch))
        os.umask(0o022)

    # ---------------------------------------------------------------- per test, in the child
    def enter_child(self, fds: tuple[int, ...], uid: int | None, limits: ChildLimits) -> None:
        """Right after the fork, before the test is known: new session, fds, jail, the
        unprivileged ``uid`` and the rlimits (those of the job running while it was forked).

        ``fds`` become fds 0.. (stdin, stdout, stderr, status, go-pipe); every other fd is
        closed. Raises OSError if anything fails.
        """
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(len(fds), 1 << 20)
        if self.jail is not None:
            os.chroot(self.jail)
        os.chdir("/")
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        _prctl(PR_SET_DUMPABLE, 1)  # the server and zygote are not dumpable; the program's /proc/self is
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
        nproc = limits.processes + (self.nproc_base if self.mode != "namespaces" else 0)
        for res, soft, hard in (
                (resource.RLIMIT_CORE, 0, 0),
                (resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + 1),
                (resource.RLIMIT_FSIZE, limits.file_size, limits.file_size),
                (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
                (resource.RLIMIT_NPROC, nproc, nproc),
                (resource.RLIMIT_DATA, limits.data, limits.data),
                (resource.RLIMIT_AS, limits.address_space, limits.address_space),
                (resource.RLIMIT_MSGQUEUE, 0, 0)):  # no POSIX message queue can outlive the test
            cap = resource.getrlimit(res)[1]  # without privileges a hard limit only goes down
            if cap != resource.RLIM_INFINITY:
                soft, hard = min(soft, cap), min(hard, cap)
            resource.setrlimit(res, (soft, hard))

    def start_child(self) -> None:
        """Once the test is known: into the (freshly emptied) scratch directory."""
        os.chdir(self.child_scratch)

    # ---------------------------------------------------------------- per test, in the server
    def reset_scratch(self, uid: int | None) -> None:
        """Empty the scratch dir, owned by ``uid`` (the next test's) with mode 0700."""
        want_uid = uid if uid is not None else os.getuid()
        try:
            st = os.lstat(self.scratch)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(self.scratch)
                raise FileNotFoundError
        except FileNotFoundError:
            os.mkdir(self.scratch, 0o700)
            st = os.lstat(self.scratch)
        if st.st_uid != want_uid or stat.S_IMODE(st.st_mode) != 0o700:
            if uid is not None:
                os.chown(self.scratch, uid, uid)
            os.chmod(self.scratch, 0o700)
        with os.scandir(self.scratch) as it:
            names = [e.name for e in it]
        for name in names:
            remove_tree(os.path.join(self.scratch, name))

    def kill_leftovers(self) -> None:
        """At server exit: kill and reap every child left (as child subreaper the server
        inherits the orphans of a zygote that died)."""
        kill_children(self.uids or ())

    def close(self) -> None:
        """Final clean-up when the server exits."""
        self.kill_leftovers()
        if self.mode != "namespaces":
            remove_tree(os.path.dirname(self.scratch))


# -------------------------------------------------------------------- kernel objects

# A seccomp filter that makes the three keyring system calls fail with EPERM. Kernel keyrings
# are per uid, not per namespace or process: a key a test adds to its user keyring (or to the
# session keyring it inherits from the server) would be readable by a later test. No program
# a judge runs needs them, so none can be created. Syscall numbers per audit architecture
# (x86-64 masks the x32 bit); an unknown architecture is let through (it has no filter).
_KEYRING_SYSCALLS = {0xC000003E: (248, 249, 250),   # x86_64: add_key, request_key, keyctl
                     0x40000003: (286, 287, 288),   # i386 (int 0x80 from an x86-64 process)
                     0xC00000B7: (217, 218, 219)}   # aarch64
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _keyring_filter() -> list[tuple[int, int, int, int]]:
    """The classic-BPF program (code, jt, jf, k) of `deny_keyrings`."""
    ld_abs, jeq, and_k, ret = 0x20, 0x15, 0x54, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM
    prog: list[tuple[int, int, int, int]] = []
    for arch, numbers in _KEYRING_SYSCALLS.items():
        block = [(ld_abs, 0, 0, 0)]  # seccomp_data.nr
        if arch == 0xC000003E:
            block.append((and_k, 0, 0, 0xBFFFFFFF))  # x32 system calls: same numbers, bit 30 set
        for i, nr in enumerate(numbers):
            left = len(numbers) - 1 - i  # comparisons after this one, then "ret allow", then "ret deny"
            block.append((jeq, left + 1, 0, nr))
        block += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
        prog += [(ld_abs, 0, 0, 4), (jeq, 0, len(block), arch)] + block  # seccomp_data.arch
    return prog + [(ret, 0, 0, allow)]


def deny_keyrings() -> None:
    """Install the keyring filter in this process and every process it forks from now on
    (needs no_new_privs, set by `Sandbox.prepare_server`). Raises OSError if refused."""
    prog = _keyring_filter()
    insns = (_SockFilter * len(prog))(*[_SockFilter(*i) for i in prog])
    fprog = _SockFprog(len(prog), insns)
    fn = libc().prctl
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    _check(fn(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0), "seccomp")


_SYSV = (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl"))


def remove_sysv_ipc() -> int:
    """Remove every SysV shared memory segment, message queue and semaphore set of this IPC
    namespace (the worker's own: only its tests create any); returns how many."""
    removed = 0
    for kind, ctl in _SYSV:
        try:
            with open(f"/proc/sysvipc/{kind}", "rb") as f:
                rows = f.read().split(b"\n")[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 1:
                ipc_id = int(fields[1])
                fn = getattr(libc(), ctl)
                ok = fn(ipc_id, 0, 0) if kind == "sem" else fn(ipc_id, 0, None)  # IPC_RMID = 0
                removed += ok == 0
    return removed


def limit_sysv_ipc(max_bytes: int) -> None:
    """Cap SysV shared memory of this (private) IPC namespace at ``max_bytes`` in all and
    message queues at 16 (16 KiB each): segments are not counted by a process's rlimits."""
    page = os.sysconf("SC_PAGE_SIZE")
    for name, value in (("shmmax", max_bytes), ("shmall", max(1, max_bytes // page)), ("msgmni", 16)):
        with open(f"/proc/sys/kernel/{name}", "w") as f:
            f.write(str(int(value)))


# -------------------------------------------------------------------- process helpers

def kill_all_of_uid(uid: int) -> None:
    """Fork a helper that becomes ``uid`` and sends SIGKILL to every process of that uid.

    ``kill(-1)`` walks the process list under the kernel's task-list lock, so processes of
    that uid cannot fork past it; the uid is unique to this server, so nothing else is hit.
    """
    pid = os.fork()
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        except BaseException:
            pass
        os._exit(0)
    reap(pid)


def kill_pid_and_group(pid: int) -> None:
    """SIGKILL a process and its process group; either being gone already is fine."""
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def reap(pid: int) -> None:
    """Wait for child ``pid`` to end; one already reaped is fine."""
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except ChildProcessError:
            return
        except InterruptedError:
            continue


def kill_children(uids: Iterable[int], keep: Collection[int] = ()) -> None:
    """Kill and reap every child of this process (and every orphan that becomes one) not in
    ``keep``; first kill every process of each sandbox uid at once (none can fork past that)."""
    uids = list(uids)
    for _ in range(10000):
        pids = [p for p in child_pids() if p not in keep]
        if not pids:
            return
        for uid in uids:
            kill_all_of_uid(uid)
        for pid in pids:
            kill_pid_and_group(pid)
        for pid in pids:
            reap(pid)


def kill_uid_by_scan(uid: int, rounds: int = 5) -> None:
    """SIGKILL every process of ``uid`` found in /proc (from a process that may signal them).

    For a server that died with sandbox processes of its uid still running; RLIMIT_NPROC
    bounds how many a fork loop can make between the rounds.
    """
    for _ in range(rounds):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if os.stat(f"/proc/{name}").st_uid != uid:
                    continue
                os.kill(int(name), signal.SIGKILL)
                found = True
            except OSError:
                continue
        if not found:
            return


def child_pids(parent: int | None = None) -> list[int]:
    """Direct children of a single-threaded process (default: this one)."""
    parent = os.getpid() if parent is None else parent
    try:
        fd = os.open(f"/proc/{parent}/task/{parent}/children", os.O_RDONLY)
    except FileNotFoundError:  # kernel without CONFIG_PROC_CHILDREN: scan /proc
        pass
    else:
        try:
            data = os.read(fd, 1 << 16)
        finally:
            os.close(fd)
        return [int(x) for x in data.split()]
    me = str(parent).encode()
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[1] == me:
                        pids.append(int(name))
            except (OSError, IndexError):
                continue
    return pids


def remove_tree(path: str) -> None:
    """rm -rf that also copes with directories the program made unreadable (no shutil: the
    server stays small, and every module it loads makes each fork a little slower)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        _unlink(path)
        return
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    try:
        names = os.listdir(path)
    except OSError:
        names = []
    for name in names:
        remove_tree(os.path.join(path, name))
    try:
        os.rmdir(path)
    except OSError:
        pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def count_user_tasks(uid: int) -> int:
    """Threads the user runs now (RLIMIT_NPROC counts threads of the real uid)."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                text = f.read()
        except OSError:
            continue
        uid_line = text.split(b"\nUid:", 1)[1].split(None, 1)[0] if b"\nUid:" in text else b""
        if uid_line == str(uid).encode():
            threads = text.split(b"\nThreads:", 1)[1].split(None, 1)[0] if b"\nThreads:" in text else b"1"
            total += int(threads)
    return total


# -------------------------------------------------------------------- set-up, once per server

def namespaces_unavailable_reason() -> str | None:
    """Why namespaces mode cannot work in this process, or None when it can (probed in a fork)."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if os.geteuid() != 0:
        return "not running as root"
    pid = os.fork()
    if pid == 0:
        try:
            unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC)
            mount(None, "/", None, MS_REC | MS_PRIVATE)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return "unshare(CLONE_NEWNS|CLONE_NEWNET) is not permitted (no CAP_SYS_ADMIN?)"
    return None


def setup(mode: str, scratch_mb: int, nproc_base: int | None = None) -> Sandbox:
    """Build the sandbox for this server process: "namespaces", "bwrap" (the server already
    runs inside bubblewrap; the rest is as "basic") or "basic". ``nproc_base``: processes the
    user runs already (RLIMIT_NPROC counts them; measured here when not given)."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    if mode == "namespaces":
        return _setup_namespaces(scratch_mb)
    if nproc_base is None:
        nproc_base = count_user_tasks(os.getuid())
    tmp = os.environ.get("TMPDIR") or "/tmp"
    base = os.path.join(tmp, f"mars2-exec-{os.getpid()}-{os.urandom(4).hex()}")
    os.mkdir(base, 0o700)
    scratch = os.path.join(base, "scratch")
    os.mkdir(scratch, 0o700)
    os.chmod(base, 0o711)
    return Sandbox(mode, scratch, scratch, nproc_base=nproc_base + 16)


def bwrap_command(argv: list[str], pkg_dir: str) -> list[str]:
    """``argv`` wrapped in bubblewrap: new user/pid/net/ipc/uts namespaces, no capabilities, a
    read-only view of the system and the Python installation (not the project or its data),
    a private /tmp, and death with the executor."""
    cmd = ["bwrap", "--die-with-parent", "--unshare-all", "--new-session", "--cap-drop", "ALL",
           "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for top in ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + top
        if os.path.islink(host):
            cmd += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            cmd += ["--ro-bind", host, host]
    bound = ["/usr", "/etc"]
    for root in _python_roots() + [os.path.join(pkg_dir, "execution")]:
        if not any(root == b or root.startswith(b + "/") for b in bound):
            cmd += ["--ro-bind", root, root]
            bound.append(root)
    data = os.path.join(pkg_dir, "data")
    if any(data.startswith(b + "/") for b in bound) and os.path.isdir(data):
        cmd += ["--tmpfs", data]  # an installed package: hide its test data
    return cmd + ["--chdir", "/", "--"] + argv


def _python_roots() -> list[str]:
    """Directories the child's interpreter needs: prefixes and site-packages, not the project."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    for p in sys.path:
        if p and os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages"):
            roots.add(p)
    out: list[str] = []
    for r in sorted({os.path.realpath(r) for r in roots if r and os.path.isdir(r)}
                    | {os.path.abspath(r) for r in roots if r and os.path.isdir(r)}, key=len):
        if r == "/" or any(r == o or r.startswith(o.rstrip("/") + "/") for o in out):
            continue
        out.append(r)
    return out


def _setup_namespaces(scratch_mb: int) -> Sandbox:
    unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    binds: list[tuple[str, str]] = []  # (path in jail, host path)
    for top in ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + top
        if os.path.islink(host):
            binds.append((host, "link:" + os.readlink(host)))
        elif os.path.isdir(host):
            binds.append((host, host))
    for root in _python_roots():
        if not any(root == j or root.startswith(j + "/") for j, h in binds if not h.startswith("link:")):
            binds.append((root, root))
    # hold every source open *before* mounting over /tmp, so sources under /tmp survive
    sources = {h: os.open(h, os.O_PATH) for _, h in binds if not h.startswith("link:")}
    devs = {d: os.open(f"/dev/{d}", os.O_PATH) for d in ("null", "zero", "full", "random", "urandom")}
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # mars2_env: hide its data
    jail = "/tmp"
    mount("mars2-jail", jail, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=8m")
    # the private /tmp first: sources that live under /tmp (a venv in a checkout there) are
    # bound on top of it below instead of being hidden by it
    os.makedirs(jail + "/tmp", exist_ok=True)
    mount("mars2-scratch", jail + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          f"mode=0711,size={int(scratch_mb)}m,nr_inodes=16384")
    for path, host in binds:
        target = jail + path
        if host.startswith("link:"):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(host[5:], target)
            continue
        os.makedirs(target, exist_ok=True)
        src = f"/proc/self/fd/{sources[host]}"
        mount(src, target, None, MS_BIND | MS_REC)
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if os.path.isdir(jail + pkg):  # installed inside a bound site-packages: hide the test data
        mount("mars2-hidden", jail + pkg, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    os.makedirs(jail + "/dev", exist_ok=True)
    for d, fd in devs.items():
        open(f"{jail}/dev/{d}", "w").close()
        mount(f"/proc/self/fd/{fd}", f"{jail}/dev/{d}", None, MS_BIND)
    for name, dest in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                       ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(dest, f"{jail}/dev/{name}")
    os.makedirs(jail + "/proc", exist_ok=True)
    mount("proc", jail + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    for fd in list(sources.values()) + list(devs.values()):
        os.close(fd)
    uids = server_uids(os.getpid())
    box = Sandbox("namespaces", jail + SCRATCH_IN_JAIL, SCRATCH_IN_JAIL, jail=jail, uids=uids)
    for uid in uids:  # a previous server with our pid may have left processes behind
        kill_all_of_uid(uid)
    os.mkdir(box.scratch, 0o700)
    return box


def describe_errno(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, str(e.errno))
