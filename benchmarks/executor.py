"""Executor speed against the obvious baseline, measured in the same run.

Baseline: a fresh ``python3`` subprocess per test (``sys.executable``, the program in a file,
stdin piped, stdout captured, graded with the same LiveCodeBench rule). Ours: `Executor`,
a fresh process per test forked from a warm worker server. Both run the same trivial
programs one test at a time; then ``run_many`` shows throughput across workers.

    python benchmarks/executor.py [--tests 200] [--items 400] [--workers N]

Prints ms per test for each, the ratio, and run_many tests/s; exits non-zero when the
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
from mars2_env.problems import Problem, TestCase  # noqa: E402

PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


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


def ours(ex: Executor, problem: Problem) -> float:
    start = time.perf_counter()
    res = ex.run(problem, PROGRAM, stop_on_first_failure=False)
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
    if ratio < args.min_ratio:
        print(f"FAIL: speed-up {ratio:.1f}x is below {args.min_ratio}x")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
