"""Adversarial programs: the harness survives, the verdict is right, nothing outside changes.

Runs in the namespaces sandbox when this process may use it (root, as in CI), in bubblewrap
when it is installed, and in the basic sandbox always; the checks the basic sandbox cannot
pass (files outside, network) run only in the other two.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import threading
import time
import warnings

import pytest

from mars2_env.execution import Executor, Verdict, format_feedback, sandbox
from mars2_env.execution import executor as executor_mod
from mars2_env.problems import Problem, TestCase

SECRET = "mars2-test-secret-5f1d"
OK = Problem(id="ok", statement="print ok", public_tests=[TestCase("", "ok\n")], time_limit_s=1.5)
NS_REASON = sandbox.namespaces_unavailable_reason()
HAVE_BWRAP = shutil.which("bwrap") is not None
MODES = ["basic"] + (["namespaces"] if NS_REASON is None else []) + (["bwrap"] if HAVE_BWRAP else [])


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _sandbox_uid_processes(ex: Executor, between_tests: bool = True) -> list[int]:
    """Processes (zombies too) running as a sandbox uid of one of ``ex``'s workers; between
    tests, not counting the one child per worker already waiting for the next test."""
    uids = {uid for w in ex._pool.workers for uid in sandbox.server_uids(w.proc.pid)}
    waiting = {c for w in ex._pool.workers for z in sandbox.child_pids(w.proc.pid)
               for c in sandbox.child_pids(z)} if between_tests else set()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{name}")
        except FileNotFoundError:
            continue
        if st.st_uid in uids and int(name) not in waiting:
            found.append(int(name))
    return found


def _none_left(ex: Executor, timeout: float = 5.0) -> bool:
    """No sandbox-uid process remains (the zygote reaps the last zombie a moment later)."""
    deadline = time.monotonic() + timeout
    while _sandbox_uid_processes(ex):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="module", params=MODES)
def box(request, tmp_path_factory):
    """An executor in one sandbox mode plus what the adversarial programs aim at."""
    mode = request.param
    os.environ["MARS2_TEST_SECRET"] = SECRET  # must not reach the programs
    outside = tmp_path_factory.mktemp("outside")
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    evil = f"/tmp/mars2-evil-{os.getpid()}.txt"  # world-writable on the host, not in the jail
    programs = {
        "fork_bomb": "import os\nwhile True:\n    os.fork()\n",
        "alloc_4gib": "x = bytearray(4 << 30)\nprint('ok')\n",
        "busy_loop": "while True:\n    pass\n",
        "ignore_alarm_and_sleep": (
            "import signal, time\nfor s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
            "    signal.signal(s, signal.SIG_IGN)\nsignal.alarm(1)\ntime.sleep(60)\nprint('ok')\n"),
        "kill_parent": "import os, time\nos.kill(os.getppid(), 9)\ntime.sleep(0.2)\nprint('ok')\n",
        "write_delete_outside": (
            "import os\nout = []\n"
            f"for op in (lambda: open({str(victim)!r}, 'w').write('pwned'), lambda: os.remove({str(victim)!r}),\n"
            f"           lambda: open({str(outside / 'new.txt')!r}, 'w').write('x'),\n"
            f"           lambda: open({evil!r}, 'w').write('x'),\n"
            "           lambda: open('../escape.txt', 'w').write('x')):\n"
            "    try:\n        op()\n        out.append('done')\n    except OSError:\n        out.append('denied')\n"
            "open('mine.txt', 'w').write('scratch is writable')\nout.append(open('mine.txt').read())\n"
            "print(' '.join(out[:5]), '|', out[5])\n"),
        "loopback_socket": (
            "import socket\ntry:\n"
            f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "    s.sendall(b'stolen')\n    print('connected')\nexcept OSError:\n    print('ok')\n"),
        "env_secret": (
            "import os\nsecret = os.environ.get('MARS2_TEST_SECRET', '')\n"
            f"found = {SECRET!r} in secret or {SECRET.encode()!r} in open('/proc/self/environ', 'rb').read()\n"
            "for pid in (os.getppid(), 1):\n    try:\n"
            f"        found = found or {SECRET.encode()!r} in open(f'/proc/{{pid}}/environ', 'rb').read()\n"
            "    except OSError:\n        pass\n"
            "print('leaked' if found else 'ok')\n"),
        "gigabyte_output": "import sys\nblock = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(block)\n",
        "daemonised_grandchild": (
            "import os, time\nr, w = os.pipe()\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        os.write(w, str(os.getpid()).encode())\n        time.sleep(120)\n    os._exit(0)\n"
            "os.close(w)\nprint(os.read(r, 32).decode())\n"),
        "ctypes_segfault": "import ctypes\nctypes.string_at(0)\n",
    }
    if mode == "basic":  # it cannot stop these; do not let them touch the host
        programs.pop("write_delete_outside")
        programs.pop("loopback_socket")
    if mode != "namespaces" and os.geteuid() == 0:
        programs.pop("fork_bomb")  # root ignores RLIMIT_NPROC: only the namespaces mode bounds it
    with Executor(max_workers=2, sandbox=mode, time_limit_s=1.5) as ex:
        names = list(programs)
        results = dict(zip(names, ex.run_many([(OK, programs[n]) for n in names]), strict=True))
        yield {"mode": mode, "ex": ex, "results": results, "victim": victim, "outside": outside,
               "listener": listener, "evil": evil}
    listener.close()
    os.environ.pop("MARS2_TEST_SECRET", None)


def _check(box, name, *verdicts):
    if name not in box["results"]:
        pytest.skip(f"{name} is not run in the {box['mode']} sandbox here")
    r = box["results"][name]
    assert r.verdict in verdicts, format_feedback(r)
    return r


def test_fork_bomb(box):
    _check(box, "fork_bomb", Verdict.RUNTIME_ERROR, Verdict.TIME_LIMIT)
    if box["mode"] == "namespaces":
        assert _none_left(box["ex"]), _sandbox_uid_processes(box["ex"])


def test_four_gib_allocation(box):
    r = _check(box, "alloc_4gib", Verdict.MEMORY_LIMIT)
    assert "MemoryError" in r.tests[0].error


def test_busy_loop(box):
    _check(box, "busy_loop", Verdict.TIME_LIMIT)


def test_ignoring_signals_does_not_evade_the_timeout(box):
    _check(box, "ignore_alarm_and_sleep", Verdict.TIME_LIMIT)


def test_killing_the_parent(box):
    r = _check(box, "kill_parent", Verdict.RUNTIME_ERROR)
    if box["mode"] == "namespaces":
        assert "PermissionError" in r.tests[0].error  # another uid: the server cannot be signalled
    assert box["ex"].run(OK, "print('ok')").verdict == Verdict.PASSED  # a killed worker is replaced


def test_writing_and_deleting_outside_scratch(box):
    r = _check(box, "write_delete_outside", Verdict.WRONG_ANSWER)
    if box["mode"] == "namespaces":
        assert r.tests[0].actual == "denied denied denied denied denied | scratch is writable\n"
    else:  # bubblewrap: a private, writable /tmp; the host's files are out of sight
        assert r.tests[0].actual.startswith("denied denied denied ")
    assert box["victim"].read_text() == "keep me"
    assert sorted(p.name for p in box["outside"].iterdir()) == ["victim.txt"]
    assert not os.path.exists(box["evil"])


def test_network_is_unreachable(box):
    _check(box, "loopback_socket", Verdict.PASSED)
    with pytest.raises(socket.timeout):
        box["listener"].accept()


def test_environment_secret_does_not_leak(box):
    _check(box, "env_secret", Verdict.PASSED)


def test_gigabyte_of_output(box):
    r = _check(box, "gigabyte_output", Verdict.OUTPUT_LIMIT)
    assert len(r.tests[0].actual) < (1 << 20)


def test_daemonised_grandchild_is_killed(box):
    r = _check(box, "daemonised_grandchild", Verdict.WRONG_ANSWER)
    pid = int(r.tests[0].actual)
    if box["mode"] != "bwrap":  # (bubblewrap's pids are those of its own pid namespace)
        assert not _alive(pid)
    if box["mode"] == "namespaces":
        assert _none_left(box["ex"]), _sandbox_uid_processes(box["ex"])


def test_segfault_through_ctypes(box):
    r = _check(box, "ctypes_segfault", Verdict.RUNTIME_ERROR)
    assert "SIGSEGV" in r.tests[0].error


def test_harness_survives_everything(box):
    ex = box["ex"]
    assert ex.mode == box["mode"]
    results = ex.run_many([(OK, "print('ok')")] * 6)
    assert all(r.verdict == Verdict.PASSED for r in results)


def test_scratch_is_fresh_for_every_test(box):
    code = "import os\nprint(sorted(os.listdir('.')))\nopen('left.txt', 'w').write('x')\n"
    first, second = box["ex"].run_many([(OK, code), (OK, code)])
    assert first.tests[0].actual == second.tests[0].actual == "[]\n"


def test_imports_beyond_the_preloaded_modules_work(box):
    code = "import xml.dom.minidom, sqlite3, email.parser, tomllib\nprint('ok')\n"
    r = box["ex"].run(OK, code)
    assert r.verdict == Verdict.PASSED, format_feedback(r)


# ---------------------------------------------------------------- degrading

def test_auto_mode_degrades_with_one_warning(monkeypatch):
    monkeypatch.setattr(executor_mod, "_ns_reason", ["not running as root (simulated)"])
    monkeypatch.setattr(executor_mod, "_warned", False)
    monkeypatch.setattr(executor_mod.shutil, "which", lambda name: None)  # no bubblewrap either
    with pytest.warns(RuntimeWarning, match="namespace sandbox is unavailable.*simulated") as record:
        with Executor(max_workers=1) as ex:
            assert ex.run(OK, "print('ok')").verdict == Verdict.PASSED
            assert ex.mode == "basic"
        with Executor(max_workers=1) as ex:
            ex.run(OK, "print('ok')")
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    with pytest.raises(RuntimeError, match="unavailable here: not running as root"):
        with Executor(max_workers=1, sandbox="namespaces") as ex:
            ex.run(OK, "print('ok')")


@pytest.mark.skipif(not HAVE_BWRAP, reason="bubblewrap is not installed")
def test_auto_mode_prefers_bubblewrap_to_basic(monkeypatch):
    monkeypatch.setattr(executor_mod, "_ns_reason", ["not running as root (simulated)"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Executor(max_workers=1) as ex:
            assert ex.run(OK, "print('ok')").verdict == Verdict.PASSED
            assert ex.mode == "bwrap"


def test_explicit_basic_mode_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Executor(max_workers=1, sandbox="basic") as ex:
            assert ex.run(OK, "print('ok')").verdict == Verdict.PASSED


def test_a_worker_killed_from_outside_is_replaced():
    with Executor(max_workers=1) as ex:
        assert ex.run(OK, "print('ok')").verdict == Verdict.PASSED
        pid = ex._pool.workers[0].proc.pid
        os.kill(pid, signal.SIGKILL)
        r = ex.run(OK, "print('ok')")  # not the program's fault: re-queued on a fresh worker
        assert r.verdict == Verdict.PASSED, format_feedback(r)
        assert ex._pool.workers[0].proc.pid != pid


def test_a_zygote_killed_from_outside_costs_no_program_a_test():
    with Executor(max_workers=1) as ex:
        assert ex.run(OK, "print('ok')").verdict == Verdict.PASSED
        server = ex._pool.workers[0].proc.pid
        zygote = sandbox.child_pids(server)[0]  # the one forking plain programs
        os.kill(zygote, signal.SIGKILL)  # as the OOM killer would
        r = ex.run(OK, "print('ok')")
        assert r.verdict == Verdict.PASSED, format_feedback(r)
        assert ex._pool.workers[0].proc.pid != server


@pytest.mark.skipif(NS_REASON is not None, reason=f"namespaces sandbox unavailable: {NS_REASON}")
def test_a_worker_killed_under_a_test_retries_it_on_a_fresh_worker():
    """The next innocent program is not charged for an infrastructure fault: the test the
    worker died under is run again, and the tests after it were re-queued."""
    p = Problem(id="slow", statement="", public_tests=[TestCase("", "ok\n")] * 3, time_limit_s=20)
    code = "import time\ntime.sleep(1.5)\nprint('ok')\n"
    with Executor(max_workers=1, sandbox="namespaces") as ex:
        ex.run(OK, "print('ok')")
        results = []
        runner = threading.Thread(target=lambda: results.append(ex.run(p, code)))
        runner.start()
        deadline = time.monotonic() + 20
        while len(_sandbox_uid_processes(ex, False)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # the first test's program runs (and the next child waits)
        server = ex._pool.workers[0].proc.pid
        os.kill(server, signal.SIGKILL)
        runner.join(90)
        assert results and results[0].verdict == Verdict.PASSED, format_feedback(results[0])
        assert (results[0].passed, results[0].total) == (3, 3)
        assert ex._pool.workers[0].proc.pid != server


@pytest.mark.skipif(NS_REASON is not None, reason=f"namespaces sandbox unavailable: {NS_REASON}")
def test_daemons_die_with_a_worker_killed_mid_test():
    """The worker dies under the test twice (retried once on a fresh worker, then charged to
    the program); each time the program and its daemon die with it."""
    with Executor(max_workers=1, sandbox="namespaces", time_limit_s=30) as ex:
        ex.run(OK, "print('ok')")
        code = "import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(120)\n"
        results = []
        runner = threading.Thread(target=lambda: results.append(ex.run(OK, code)))
        runner.start()
        victims, killed = [], None
        for _ in range(2):
            deadline = time.monotonic() + 20
            while (ex._pool.workers[0].proc.pid == killed
                   or len(_sandbox_uid_processes(ex, False)) < 3) and time.monotonic() < deadline:
                time.sleep(0.02)
            found = _sandbox_uid_processes(ex, False)
            assert len(found) >= 3  # the program, its daemon and the next test's waiting child
            victims += found
            killed = ex._pool.workers[0].proc.pid
            os.kill(killed, signal.SIGKILL)
        runner.join(60)
        assert results and results[0].verdict == Verdict.RUNTIME_ERROR
        assert "worker died" in results[0].tests[0].error and "two fresh workers" in results[0].tests[0].error
        # SIGKILL was sent when the worker was replaced; dying is asynchronous in the kernel
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(_alive(pid) for pid in victims)
        assert ex.run(OK, "print('ok')").verdict == Verdict.PASSED


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0,
                    reason="the namespaces jail needs root")
def test_interpreter_under_tmp_stays_importable_in_the_jail(tmp_path):
    """A venv inside a checkout under /tmp (as CI may clone) must not be hidden by the private
    /tmp of the jail: a module only in that venv's site-packages is preloaded by the worker and
    imports in the program."""
    import subprocess
    import venv

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert site.startswith(str(tmp_path))
    with open(os.path.join(site, "mars2_probe_module.py"), "w") as f:
        f.write("VALUE = 'from-tmp-venv'\n")
    os.makedirs(os.path.join(site, "sklearn"))  # a heavy module's name: the second zygote loads it
    with open(os.path.join(site, "sklearn", "__init__.py"), "w") as f:
        f.write("VALUE = 'heavy-from-tmp'\n")
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    program = ("import sys\n"
               "pre = ['mars2_probe_module' in sys.modules, 'sklearn' in sys.modules]\n"
               "import mars2_probe_module, sklearn\n"
               "print(mars2_probe_module.VALUE, sklearn.VALUE, pre)\n")
    script = (  # both must be *preloaded*: the server imports before the jail, the heavy zygote in it
        "from mars2_env.execution.executor import Executor\n"
        "from mars2_env.problems import Problem, TestCase\n"
        "out = 'from-tmp-venv heavy-from-tmp [True, True]\\n'\n"
        "p = Problem(id='p', statement='s', public_tests=[TestCase('', out)])\n"
        "preload = ['json', 'mars2_probe_module', 'sklearn']\n"
        "with Executor(max_workers=1, sandbox='namespaces', preload=preload) as ex:\n"
        f"    r = ex.run(p, {program!r})\n"
        "    print(r.verdict.value, ex.preload_failures, repr(r.tests[0].actual), r.tests[0].error[-300:])\n")
    deps = os.pathsep.join([project, site] + [p for p in sys.path if p.endswith("site-packages")])
    res = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": deps})
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[:2] == ["passed", "{}"], res.stdout
