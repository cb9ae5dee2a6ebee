"""The Ray layer on a local Ray: `RayExecutor` (same verdicts as `Executor`, dead actors
replaced and their batches re-run), generation pools (same answers as the local agent, restarts
that change nothing), and `mars2 search|eval|bench --ray` giving the local run's files."""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time

import pytest

ray = pytest.importorskip("ray")

from agents import make_agent  # noqa: E402
from mars2_cli.main import main  # noqa: E402
from mars2_env.execution import Executor  # noqa: E402
from mars2_env.problems import TestCase  # noqa: E402
from mars2_env.vector import BatchedSearch  # noqa: E402
from mars2_ray.executor import RayExecutor  # noqa: E402
from mars2_ray.generation import GenerationPool  # noqa: E402

SIM = "simulated:skill=0.5,refine=0.6"


def same_trees(a, b) -> bool:
    """Two trees.jsonl files hold the same trees (lines are written as trees finish, so their
    order depends on timing)."""
    return sorted(a.read_text().splitlines()) == sorted(b.read_text().splitlines())


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False,
             object_store_memory=150 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_executor():
    with Executor(max_workers=2) as ex:
        yield ex


def every_program(problems) -> list[tuple]:
    """Each problem's reference and wrong programs (all verdict kinds) on two test sets."""
    items = []
    for p in problems:
        for code in [p.metadata["reference_solution"], *p.metadata["wrong_solutions"]]:
            items.append((p, code, p.select_tests("public")))
            items.append((p, code, "private"))
    return items


def dicts(results) -> list[dict]:
    return [r.to_dict() for r in results]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def kill_now(handle) -> None:
    """`ray.kill` and wait until the actor is gone: the kill is asynchronous, and an actor still
    dying answers the next call (then no restart would be seen where the test expects one)."""
    ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            ray.get(handle.__ray_ready__.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        except ray.exceptions.GetTimeoutError:
            pass
        time.sleep(0.05)
    raise AssertionError("the actor was still alive 60 s after ray.kill")


# ----------------------------------------------------------------------------- RayExecutor

def test_ray_executor_gives_the_local_verdicts(demo_problems, local_executor):
    # not demo-assert-002: its unbounded recursion takes ~2 s, a runtime error or a time limit
    # depending on the machine's load, locally as on Ray
    problems = [p for p in demo_problems if "time_limit" not in p.metadata["wrong_verdicts"]
                and p.id != "demo-assert-002"][::3]
    items = every_program(problems)
    expected = dicts(local_executor.run_many(items, stop_on_first_failure=False))
    verdicts = {r["verdict"] for r in expected}
    assert {"passed", "wrong_answer", "runtime_error"} <= verdicts
    with RayExecutor(actors=2, workers_per_actor=1) as rex:
        assert dicts(rex.run_many(items, stop_on_first_failure=False)) == expected
        assert dicts(rex.run_many(items)) == dicts(local_executor.run_many(items))
        p = problems[0]
        assert rex.run(p, p.metadata["reference_solution"], "all").to_dict() == \
            local_executor.run(p, p.metadata["reference_solution"], "all").to_dict()
        subset = [TestCase(p.public_tests[0].input, p.public_tests[0].output)]
        assert rex.run(p, "print(1)", subset).to_dict() == \
            local_executor.run(p, "print(1)", subset).to_dict()
        assert rex.run_many([]) == []
        assert rex.mode == local_executor.mode
        # programs run at the driver's priority, not Ray's niceness 15 (time limits are wall time)
        assert [i["niceness"] for i in rex.actor_info()] == [os.nice(0)] * 2
        # each problem crossed to each actor once; test lists equal to a set travel as its name
        encoded, _, _ = rex._encode(items[:2], "all")
        assert [e[2] for e in encoded] == ["public", "private"]
        assert set().union(*rex._known) == {p.id for p in problems}
    with pytest.raises(RuntimeError, match="closed"):
        rex.run_many(items[:1])


def test_submit_many_resolves_each_actors_batch_when_it_returns(demo_problems, local_executor):
    """`submit_many` returns at once; the fast actor's programs are in while the slow one's
    still run (what lets a search land ready trees), and the verdicts are the local ones."""
    p = demo_problems[0]                       # a + b
    slow = "import time\ntime.sleep(1.0)\na, b = map(int, input().split())\nprint(a + b)"
    fast = p.metadata["reference_solution"]
    items = [(p, slow, "public")] * 2 + [(p, fast, "public")] * 2   # one batch per actor
    with RayExecutor(actors=2, workers_per_actor=1) as rex:
        rex.actor_info()
        started = time.monotonic()
        futures = rex.submit_many(items)
        assert time.monotonic() - started < 2.0 and not any(f.done() for f in futures[:2])
        concurrent.futures.wait(futures[2:])
        assert not any(f.done() for f in futures[:2])   # the slow batch is still running
        got = [f.result().to_dict() for f in futures]
        assert got == [r.to_dict() for r in local_executor.run_many(items)]
        assert rex.submit(p, fast, "public").result().verdict == "passed"
        out = rex.submit_many([(p, slow, "public")])
    with pytest.raises(RuntimeError, match="closed"):
        out[0].result(timeout=10)             # closing fails what is still out, at once


def test_bad_items_are_refused_before_anything_runs(demo_problems):
    with RayExecutor(actors=1) as rex:
        with pytest.raises(TypeError, match="item 1: expected a Problem"):
            rex.run_many([(demo_problems[0], "print(1)"), ("x", "print(1)")])
        with pytest.raises(ValueError, match="tests must be"):
            rex.run(demo_problems[0], "print(1)", tests="some")


def test_killed_executor_actor_is_replaced_and_its_batch_rerun(demo_problems, local_executor):
    """An actor killed mid-batch: a new one re-runs the whole batch; every program gets
    exactly one result and the verdicts are the local ones; the dead actor's sandbox
    servers exit with it."""
    p = demo_problems[0]                       # a + b
    slow = "import time\ntime.sleep(0.7)\na, b = map(int, input().split())\nprint(a + b)"
    items = [(p, slow, "public")] + every_program(demo_problems[:4])   # 2 tests: 1.4 s
    expected = dicts(local_executor.run_many(items, stop_on_first_failure=False))
    with RayExecutor(actors=2, workers_per_actor=1) as rex:
        info = rex.actor_info()
        victim = rex.slots[0].handle     # the slow programs open the first actor's batch
        killer = threading.Timer(0.5, lambda: ray.kill(victim, no_restart=True))
        killer.start()
        started = time.monotonic()
        got = dicts(rex.run_many(items, stop_on_first_failure=False))
        killer.join()
        assert time.monotonic() - started > 1.4 + 0.5   # the batch really ran twice
        assert got == expected
        assert [s.restarts for s in rex.slots] == [1, 0]
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in info[0]["server_pids"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in info[0]["server_pids"])
        assert rex.actor_info()[0]["pid"] != info[0]["pid"]


def test_actors_that_cannot_start_are_named(monkeypatch):
    """Resources held by others: a clear error instead of waiting for ever."""
    from mars2_ray import session as session_mod
    from mars2_ray.options import RayOptions

    with RayExecutor(actors=1, workers_per_actor=64, start_timeout=1) as rex:
        with pytest.raises(TimeoutError, match=r"executor-0 \(64 CPUs\).*not have those CPUs"):
            rex.run_many([])

    @ray.remote(num_cpus=3)
    class Hog:
        def ping(self):
            return 1

    hog = Hog.remote()
    ray.get(hog.ping.remote())
    monkeypatch.setattr(session_mod, "FREE_WAIT_S", 0.5)
    try:
        with pytest.raises(ValueError, match="needs 2 CPUs but the cluster has 1 free"):
            session_mod.RaySession(RayOptions(executor_cpus=2), [("coder_0", "random")])
    finally:
        ray.kill(hog)


# ----------------------------------------------------------------------------- generation pools

def observations_of(problems, k: int = 2) -> list[dict]:
    from mars2_env.aec import raw_env

    env = raw_env(problems=problems, agents=("coder_0",), budget=4)
    out = []
    for p in problems:
        env.reset(seed=0, options={"problem": p.id})
        out += [env.observe("coder_0")] * k
    return out


def texts(gens) -> list[str]:
    return [g.text for g in gens]


@pytest.mark.parametrize("spec", [SIM, "random"])
def test_pool_answers_like_the_local_agent(spec, demo_problems):
    kw = {"name": "coder_0", "seed": 11}
    if spec.startswith("simulated"):
        kw["problems"] = demo_problems
    obs = observations_of(demo_problems[:3])
    local = make_agent(spec, **kw)
    with GenerationPool(spec, kw) as pool:
        for _ in range(3):
            assert texts(pool.generate(obs)) == texts(local.generate(obs))
        assert pool.act(obs[0]) == local.act(obs[0])
        assert pool.generate([]) == []
        with pytest.raises(TypeError, match="list of observations"):
            pool.generate(obs[0])
        if spec == SIM:   # the agent's own error comes through, and the pool goes on
            with pytest.raises(KeyError, match="matches none of the"):
                pool.generate([{"statement": "no such problem", "kind": 0}])
            assert texts(pool.generate(obs)) == texts(local.generate(obs))


@pytest.mark.parametrize("spec", [SIM, "random"])
def test_seeded_requests_are_answered_alike_by_any_number_of_actors(spec, demo_problems):
    """With per-request seeds (what BatchedSearch hands out) the answers do not depend on the
    number of actors, the split of the batch or the order of the calls."""
    kw = {"name": "coder_0", "seed": 4}
    if spec.startswith("simulated"):
        kw["problems"] = demo_problems
    obs = observations_of(demo_problems[:4], k=3)
    seeds = [1000 + i for i in range(len(obs))]
    local = make_agent(spec, **kw)
    expected = texts(local.generate(obs, seeds=seeds))
    assert texts(local.generate(obs)) != expected   # the seeds matter
    with GenerationPool(spec, kw, actors=3) as pool:
        assert texts(pool.generate(obs, seeds=seeds)) == expected
        half = len(obs) // 2
        back = texts(pool.generate(obs[half:], seeds=seeds[half:]))
        assert back + texts(pool.generate(obs[:half], seeds=seeds[:half])) == \
            expected[half:] + expected[:half]
        ray.kill(pool.slots[1].handle, no_restart=True)
        assert texts(pool.generate(obs, seeds=seeds)) == expected
        with pytest.raises(ValueError, match="got 2 seeds for 12 requests"):
            pool.generate(obs, seeds=[1, 2])


def test_trees_stay_with_one_actor(tmp_path, demo_problems):
    """Replay agents count per problem, so two actors match the local agent only if every
    observation of a problem goes to the same actor."""
    problems = demo_problems[:4]
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps({"problem_id": p.id, "response": f"{p.id} answer {i}"})
                            + "\n" for p in problems for i in range(3)))
    spec, kw = f"replay:{path}", {"name": "coder_0"}
    local = make_agent(spec, **kw)
    obs = observations_of(problems)
    with GenerationPool(spec, kw, actors=2) as pool:
        for batch in (obs, obs[::-1], obs[2:5]):
            assert texts(pool.generate(batch)) == texts(local.generate(batch))
        assert sorted(pool._trees) == [2, 2]


@pytest.mark.parametrize("restore", ["auto", "replay"])
def test_restarted_generation_actor_continues_the_stream(restore, demo_problems):
    kw = {"name": "coder_0", "seed": 5, "problems": demo_problems}
    obs = observations_of(demo_problems[:3])
    local = make_agent(SIM, **kw)
    expected = [texts(local.generate(obs)) for _ in range(4)]
    with GenerationPool(SIM, kw, restore=restore) as pool:
        got = [texts(pool.generate(obs))]
        kill_now(pool.slots[0].handle)                            # between calls
        got.append(texts(pool.generate(obs)))
        call = pool.generate_async(obs)
        kill_now(pool.slots[0].handle)                            # with a call in flight
        got.append(texts(call.result()))
        got.append(texts(pool.generate(obs)))
        assert got == expected
        assert pool.restarts >= 2


# ----------------------------------------------------------------------------- search

def run_search(problems, agents, executor, kill=None, seed=3, budget=5):
    """A BatchedSearch over `problems`; `kill(round)` may kill actors between rounds."""
    search = BatchedSearch(problems, list(agents), budget=budget, executor=executor,
                           max_trees=2, expansions_per_tree=2, seed=seed)
    finished, rounds = [], 0
    while not search.done:
        if kill:
            kill(rounds)
        finished += search.step(agents)
        rounds += 1
    return {f.problem_id: f.tree.to_dict() for f in finished}


def test_search_survives_killed_actors_with_the_same_trees(demo_problems, local_executor):
    """Kill the executor actor and a generation actor mid-search: the trees are those of an
    undisturbed local run."""
    problems = demo_problems[:4]
    specs = {"coder_0": (SIM, {"seed": 1, "problems": problems}),
             "coder_1": ("random", {"seed": 2})}
    local = {n: make_agent(s, name=n, **kw) for n, (s, kw) in specs.items()}
    expected = run_search(problems, local, local_executor)

    pools = {n: GenerationPool(s, {"name": n, **kw}) for n, (s, kw) in specs.items()}
    rex = RayExecutor(actors=1, workers_per_actor=2)
    try:
        def kill(round_: int) -> None:
            if round_ == 2:
                kill_now(rex.slots[0].handle)
                kill_now(pools["coder_0"].slots[0].handle)
            if round_ == 4:
                kill_now(pools["coder_1"].slots[0].handle)

        got = run_search(problems, pools, rex, kill=kill)
        assert got == expected
        assert rex.restarts == 1 and pools["coder_0"].restarts == 1
        assert pools["coder_1"].restarts == 1
    finally:
        rex.close()
        for pool in pools.values():
            pool.close()


@pytest.mark.slow
def test_killed_rollout_worker_is_restarted_without_losing_or_repeating_a_tree(demo_problems,
                                                                               local_executor):
    from mars2_ray.options import RayOptions
    from mars2_ray.placement import plan_placement
    from mars2_ray.rollout import search_shards
    from mars2_ray.runtime import live_nodes

    problems = demo_problems[:6]
    specs = {"coder_0": (SIM, {"name": "coder_0", "seed": 1, "problems": problems}),
             "coder_1": ("random", {"name": "coder_1", "seed": 2})}
    local = {n: make_agent(s, **kw) for n, (s, kw) in specs.items()}
    expected = run_search(problems, local, local_executor)
    plan = plan_placement(live_nodes(), [(n, s) for n, (s, _) in specs.items()],
                          RayOptions(rollout_workers=2, generation_actors=2, executor_cpus=1))
    kwargs = dict(budget=5, max_trees=2, expansions_per_tree=2, seed=3)
    got, killed, seen = {}, False, set()
    for trees, _ in search_shards(plan, problems, specs, kwargs):
        for fin in trees:
            assert fin.problem_id not in got
            got[fin.problem_id] = fin.tree.to_dict()
        seen |= {a for a in ray.util.list_named_actors() if a.startswith("mars2/rollout-0/")}
        if not killed:   # after the first round: kill shard 0's worker (and with it its actors)
            ray.kill(ray.get_actor(next(iter(seen))), no_restart=True)
            killed = True
    assert got == expected
    assert sorted(name.rsplit(".", 1)[1] for name in seen) == ["0", "1"]   # one restart


# ----------------------------------------------------------------------------- the CLI

def cli(command: str, out, *extra: str) -> int:
    return main([command, "--problems", "builtin:demo", "--out", str(out), *extra])


SEARCH = ["--limit", "4", "--budget", "5", "--agents", SIM, "random", "--seed", "3",
          "--max-trees", "2", "--expansions-per-tree", "2"]


def test_search_on_ray_writes_the_local_files(tmp_path):
    assert cli("search", tmp_path / "local", *SEARCH, "--workers", "2") == 0
    assert cli("search", tmp_path / "ray", *SEARCH, "--ray") == 0
    assert cli("search", tmp_path / "ray2", *SEARCH, "--ray", "--generation-actors", "2",
               "--executor-actors", "2") == 0
    for run in ("ray", "ray2"):
        assert same_trees(tmp_path / run / "trees.jsonl", tmp_path / "local" / "trees.jsonl")
        assert (tmp_path / run / "metrics.json").read_text() == \
            (tmp_path / "local" / "metrics.json").read_text()
        assert (tmp_path / run / "report.html").is_file()
    local_trees = (tmp_path / "local" / "trees.jsonl").read_text().splitlines()
    assert len(local_trees) == 4


@pytest.mark.slow
def test_search_with_agents_in_the_driver(tmp_path):
    """--generation-actors 0: only execution goes to actors; same trees."""
    args = ["--limit", "2", "--budget", "3", "--agents", SIM, "--seed", "1"]
    assert cli("search", tmp_path / "local", *args) == 0
    assert cli("search", tmp_path / "ray", *args, "--ray", "--generation-actors", "0",
               "--executor-actors", "2") == 0
    assert same_trees(tmp_path / "ray" / "trees.jsonl", tmp_path / "local" / "trees.jsonl")


@pytest.mark.slow
def test_eval_on_ray_gives_the_local_metrics(tmp_path):
    args = ["--limit", "2", "--samples", "2", "--budget", "3", "--agents", SIM, "random"]
    assert cli("eval", tmp_path / "local", *args) == 0
    assert cli("eval", tmp_path / "ray", *args, "--ray") == 0
    read = lambda run: json.loads((tmp_path / run / "metrics.json").read_text())  # noqa: E731
    assert read("ray") == read("local")
    for agent in ("coder_0", "coder_1"):
        rel = f"pass1/{agent}/trees.jsonl"
        assert same_trees(tmp_path / "ray" / rel, tmp_path / "local" / rel)


@pytest.mark.slow
def test_bench_on_ray_gives_the_local_results(tmp_path):
    args = ["--limit", "3", "--strategies", "mars2", "parallel", "--budgets", "2", "4",
            "--seeds", "0", "1"]
    assert cli("bench", tmp_path / "local", *args) == 0
    assert cli("bench", tmp_path / "ray", *args, "--ray") == 0
    timing = ("seconds", "nodes_per_s")

    def rows(run):
        data = json.loads((tmp_path / run / "bench.json").read_text())
        return [{k: v for k, v in r.items() if not k.startswith(timing)} for r in data["runs"]]

    assert rows("ray") == rows("local")
    assert len(rows("ray")) == 8


def test_ray_flags_need_ray_and_workers_conflict(tmp_path, capsys):
    assert cli("search", tmp_path / "a", "--executor-actors", "2") == 2
    assert "only apply with --ray" in capsys.readouterr().err
    assert cli("search", tmp_path / "b", "--ray", "--executor-workers", "2") == 2
    assert "--executor-workers sizes the local executor" in capsys.readouterr().err
    assert cli("bench", tmp_path / "c", "--ray", "--rollout-workers", "2") == 2
    assert "not mars2 bench" in capsys.readouterr().err


@pytest.mark.slow
def test_hf_embedded_on_ray_gives_the_local_trees(tmp_path):
    """The embedded SmolLM2 (with a random agent) in generation actors: 2 problems x 3 nodes,
    identical trees (one torch thread on both sides: a count that followed the load would
    change the log-probabilities' last bits)."""
    args = ["--limit", "2", "--budget", "3", "--agents", "hf:embedded", "random",
            "--max-new-tokens", "32", "--seed", "0", "--torch-threads", "1"]
    assert cli("search", tmp_path / "local", *args) == 0
    assert cli("search", tmp_path / "ray", *args, "--ray") == 0
    assert same_trees(tmp_path / "ray" / "trees.jsonl", tmp_path / "local" / "trees.jsonl")
    assert len((tmp_path / "local" / "trees.jsonl").read_text().splitlines()) == 2


def test_actors_print_to_the_drivers_stderr_not_its_stdout(tmp_path):
    """A command's stdout is its result (`mars2 train` prints a JSON summary): what an actor
    prints, from Python or from C (fd 1), reaches the driver on stderr."""
    import subprocess
    import sys

    script = tmp_path / "actor_prints.py"
    script.write_text(
        "import os, time, ray\n"
        "from mars2_ray.runtime import print_to_stderr\n"
        "class Talker:\n"
        "    def __init__(self):\n"
        "        print_to_stderr()\n"
        "    def talk(self):\n"
        "        print('python-line', flush=True)\n"
        "        os.write(1, b'fd-line\\n')\n"
        "        return 1\n"
        "ray.init(address='local', num_cpus=1, include_dashboard=False, log_to_driver=True)\n"
        "assert ray.get(ray.remote(Talker).remote().talk.remote()) == 1\n"
        "time.sleep(6)  # Ray forwards log lines every ~0.5 s (more on a loaded machine)\n"
        "print('result')\n"
        "ray.shutdown()\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180, check=False,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "result"
    assert "python-line" in res.stderr and "fd-line" in res.stderr


def test_no_actor_outlives_its_run():
    """Every command above closed its actors (only this module's own are left: none)."""
    names = [a for a in ray.util.list_named_actors() if a.startswith("mars2/")]
    assert names == [], names


def test_local_ray_starts_fresh_when_another_cluster_is_advertised():
    """`--ray` without an address never joins a cluster found through RAY_ADDRESS (or
    /tmp/ray/ray_current_cluster): it starts its own, so --ray-num-cpus still applies."""
    import subprocess
    import sys
    code = ("import ray; from mars2_ray.runtime import connect; "
            "assert connect('local', num_cpus=1); "
            "print(ray.cluster_resources().get('CPU')); ray.shutdown()")
    env = dict(os.environ, RAY_ADDRESS="127.0.0.1:9")   # nothing listens there
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=180, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "1.0"
