"""Executor speed against the obvious baseline, measured in the same run.

Baseline: a fresh ``python3`` subprocess per test (``sys.executable``, the program in a file,
stdin piped, stdout captured, graded with the same LiveCodeBench rule). Ours: `Executor`,
a fresh process per test forked from a warm worker server. Both run the same trivial
programs one test at a time; then ``run_many`` shows throughput across workers.

Also, on one worker and in the same run: a program that imports numpy, with numpy preloaded
by the worker (the default) and without (each test imports it, as before the preload), against
the plain program; and the assert kind (test code in its own process, see `bridge`) against
the stdin kind.

    python benchmarks/executor.py [--tests 200] [--items 400] [--workers N]

Prints ms per test for each, the ratios, and run_many tests/s; exits non-zero when the
single-worker speed-up is below ``--min-ratio`` (default 10).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mars2_env.execution import Executor, Verdict  # noqa: E402
from mars2_env.execution.grader import lines_match  # noqa: E402
from mars2_env.execution.server import DEFAULT_PRELOAD  # noqa: E402
from mars2_env.problems import Problem, TestCase  # noqa: E402

PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"
NUMPY_PROGRAM = "import numpy as np\na, b = map(int, input().split())\nprint(int(np.add(a, b)))\n"
ADD = "def add(a, b):\n    return a + b\n"


def assert_problem(n_tests: int) -> Problem:
    return Problem(id="add-assert", statement="def add(a, b)", kind="assert",
                   public_tests=[TestCase(f"assert add({i}, {i}) == {2 * i}") for i in range(n_tests)])


def make_problem(n_tests: int, offset: int = 0) -> Problem:
    tests = [TestCase(f"{i} {i + offset}\n", f"{2 * i + offset}\n") for i in range(n_tests)]
    return Problem(id=f"add{offset}", statement="print a + b", public_tests=tests)


def baseline(problem: Problem, program_path: str) -> float:
    """Seconds for the subprocess-per-test baseline over all tests; asserts every test passes."""
    start = time.perf_counter()
    for t in problem.tests:
        proc = subprocess.run([sys.executable, program_path], input=t.input, capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0 and lines_match(proc.stdout, t.output), proc.stderr
    return time.perf_counter() - start


def ours(ex: Executor, problem: Problem, program: str = PROGRAM) -> float:
    start = time.perf_counter()
    res = ex.run(problem, program, stop_on_first_failure=False)
    elapsed = time.perf_counter() - start
    assert res.verdict == Verdict.PASSED, res.summary()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=200, help="tests per side in the 1-worker comparison")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds (spreads machine load evenly)")
    ap.add_argument("--items", type=int, default=400, help="programs in the run_many throughput run")
    ap.add_argument("--tests-per-item", type=int, default=5)
    ap.add_argument("--workers", type=int, default=None, help="run_many workers (default: one per core)")
    ap.add_argument("--sandbox", default="auto", choices=["auto", "namespaces", "bwrap", "basic"])
    ap.add_argument("--min-ratio", type=float, default=10.0)
    args = ap.parse_args(argv)

    per_round = max(1, args.tests // args.rounds)
    problem = make_problem(per_round)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "solution.py")
        with open(path, "w") as f:
            f.write(PROGRAM)
        with Executor(max_workers=1, sandbox=args.sandbox) as ex:
            t0 = time.perf_counter()
            ours(ex, make_problem(1))  # start-up of the warm server, reported separately
            startup = time.perf_counter() - t0
            base_s = ours_s = 0.0
            for _ in range(args.rounds):
                base_s += baseline(problem, path)
                ours_s += ours(ex, problem)
            mode = ex.mode
    n = per_round * args.rounds
    base_ms, ours_ms = 1000 * base_s / n, 1000 * ours_s / n
    ratio = base_ms / ours_ms

    kinds = compare_kinds(args, per_round)

    items = [(make_problem(args.tests_per_item, offset=i % 7), PROGRAM) for i in range(args.items)]
    with Executor(max_workers=args.workers, sandbox=args.sandbox) as ex:
        ex.run(make_problem(1), PROGRAM)  # start every worker before timing
        t0 = time.perf_counter()
        results = ex.run_many(items, stop_on_first_failure=False)
        many_s = time.perf_counter() - t0
        workers = ex.max_workers
    assert all(r.verdict == Verdict.PASSED for r in results)
    many_tests = args.items * args.tests_per_item

    print(f"sandbox mode: {mode}; {n} tests per side, 1 worker, {os.cpu_count()} CPUs")
    print(f"baseline (fresh python3 subprocess per test): {base_ms:8.2f} ms/test")
    print(f"mars2 Executor (fork from warm server):       {ours_ms:8.2f} ms/test")
    print(f"speed-up: {ratio:.1f}x   (worker start-up, once: {1000 * startup:.0f} ms)")
    print(f"run_many: {args.items} programs x {args.tests_per_item} tests on {workers} workers: "
          f"{many_tests / many_s:.0f} tests/s ({1000 * many_s / many_tests:.2f} ms/test)")
    plain, numpy_pre, numpy_cold, assert_ms = (kinds[k] for k in ("plain", "numpy", "numpy_cold", "assert"))
    if numpy_pre is not None:
        print(f"import numpy, preloaded (default):     {numpy_pre:8.2f} ms/test ({numpy_pre / plain:.2f}x the plain program)")
        print(f"import numpy, not preloaded:           {numpy_cold:8.2f} ms/test ({numpy_cold / plain:.2f}x; "
              f"the preload saves {numpy_cold / numpy_pre:.1f}x)")
    print(f"assert kind (test and program processes): {assert_ms:6.2f} ms/test ({assert_ms / plain:.2f}x the stdin kind)")
    print(f"load average: {os.getloadavg()[0]:.2f}")
    if ratio < args.min_ratio:
        print(f"FAIL: speed-up {ratio:.1f}x is below {args.min_ratio}x")
        return 1
    return 0


def compare_kinds(args: argparse.Namespace, per_round: int) -> dict[str, float | None]:
    """ms/test on one worker, alternating rounds: plain stdin, numpy (preloaded and not), assert."""
    problem, asserts = make_problem(per_round), assert_problem(per_round)
    try:
        import numpy  # noqa: F401
        have_numpy = True
    except ImportError:
        have_numpy = False
    no_numpy = tuple(m for m in DEFAULT_PRELOAD if m != "numpy")
    totals = {"plain": 0.0, "numpy": 0.0, "numpy_cold": 0.0, "assert": 0.0}
    with Executor(max_workers=1, sandbox=args.sandbox) as warm, \
            Executor(max_workers=1, sandbox=args.sandbox, preload=no_numpy) as cold:
        for ex in (warm, cold):
            ours(ex, make_problem(1))
        ours(warm, assert_problem(1), ADD)
        for _ in range(args.rounds):
            totals["plain"] += ours(warm, problem)
            totals["assert"] += ours(warm, asserts, ADD)
            if have_numpy:
                totals["numpy"] += ours(warm, problem, NUMPY_PROGRAM)
                totals["numpy_cold"] += ours(cold, problem, NUMPY_PROGRAM)
    n = per_round * args.rounds
    out: dict[str, float | None] = {k: 1000 * v / n for k, v in totals.items()}
    if not have_numpy:
        out["numpy"] = out["numpy_cold"] = None
    return out


if __name__ == "__main__":
    sys.exit(main())
