"""Build ``builtin:warmup_train`` and ``builtin:warmup_heldout``: a learning split of
``builtin:trivial`` sized for the embedded SmolLM2-135M (``make learn`` trains on one part and
measures Pass@1 on the other).

Selection, from the measured base solve rates in ``trivial_rates.json`` (written by
``scripts/measure_trivial.py``) at the demo's setting (``demo_setting``: the compact prompt at
temperature 0.7, responses cut at the first complete python block, 96 new tokens):

1. keep the problems whose base rate lies in [``LOW``, ``HIGH``] = [0.05, 0.40], i.e. the model
   solves them sometimes but rarely (1 to 3 of 8 samples), so a policy gradient has signal and
   there is room to improve;
2. split them by kind (stdin / functional / assert), sort each kind by (rate, id) and send every
   second problem (positions 1, 3, 5, ...) to the held-out part, the rest to the train part.
   Both parts then cover every kind and a similar spread of rates; no problem is in both.

The rows are copied from ``trivial.jsonl`` unchanged except for ``metadata.warmup``: the part,
the setting and rate it was chosen on, and the rule. Deterministic: a re-run gives
byte-identical files.

    python mars2_env/data/build_warmup.py            # (re)write warmup_train.jsonl, warmup_heldout.jsonl
    python mars2_env/data/build_warmup.py --check    # exit 1 if either file is out of date
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRIVIAL = HERE / "trivial.jsonl"
RATES = HERE / "trivial_rates.json"
TRAIN_OUT = HERE / "warmup_train.jsonl"
HELDOUT_OUT = HERE / "warmup_heldout.jsonl"
LOW, HIGH = 0.05, 0.40
KINDS = ("stdin", "functional", "assert")
RULE = (f"base rate in [{LOW}, {HIGH}] at the setting; per kind sorted by (rate, id), "
        "every second problem held out")


def select(rows: list[dict[str, Any]], rates: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{"train": rows, "heldout": rows} by the rule of the module docstring."""
    setting = rates["demo_setting"]
    measured = rates["settings"][setting]
    samples = measured["samples"]
    rate = {pid: solved / samples for pid, solved in measured["solved"].items()}
    missing = [r["id"] for r in rows if r["id"] not in rate]
    if missing:
        raise ValueError(f"no measured rate at {setting} for {missing}; run "
                         "scripts/measure_trivial.py --new-problems first")
    parts: dict[str, list[dict[str, Any]]] = {"train": [], "heldout": []}
    for kind in KINDS:
        band = sorted((r for r in rows if r["kind"] == kind and LOW <= rate[r["id"]] <= HIGH),
                      key=lambda r: (rate[r["id"]], r["id"]))
        for i, row in enumerate(band):
            part = "heldout" if i % 2 else "train"
            row = json.loads(json.dumps(row))  # a copy
            row["metadata"]["warmup"] = {
                "part": part, "setting": setting, "base_rate": round(rate[row["id"]], 4),
                "samples": samples, "rule": RULE,
                "rates_file": "mars2_env/data/trivial_rates.json"}
            parts[part].append(row)
    for part in parts.values():
        part.sort(key=lambda r: r["id"])
    return parts


def render(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a file differs from what the build gives; write nothing")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in TRIVIAL.read_text(encoding="utf-8").splitlines()]
    parts = select(rows, json.loads(RATES.read_text(encoding="utf-8")))
    outputs = {TRAIN_OUT: render(parts["train"]), HELDOUT_OUT: render(parts["heldout"])}
    if args.check:
        stale = [str(p) for p, data in outputs.items() if not p.exists() or p.read_bytes() != data]
        if stale:
            print(f"build_warmup: out of date: {', '.join(stale)}; re-run without --check",
                  file=sys.stderr)
            return 1
        return 0
    for path, data in outputs.items():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    print(f"build_warmup: {len(parts['train'])} train, {len(parts['heldout'])} held-out problems",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
