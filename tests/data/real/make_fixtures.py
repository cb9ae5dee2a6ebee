"""Cut the fixture files in this folder from the real public files (see README.md).

    python tests/data/real/make_fixtures.py SRC_DIR

SRC_DIR holds the source files under the names used below (fetched from the repositories and
commits the README cites). Rows are copied as they are (JSON objects re-serialised; JSONL lines
copied byte for byte); only ``rllm_reward_tests.json`` is assembled, from the literal test data
of rllm's reward tests, and ``livecodebench_1873_A.sample.jsonl`` is the one LiveCodeBench row
of Kaggle's example (a Python dict literal there) written as a JSONL line.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def jsonl_lines(path: Path, keep) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line for line in f if line.strip() and keep(json.loads(line))]


def write_gz(path: Path, lines: list[str]) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write("".join(lines).encode("utf-8"))


def json_rows(path: Path, indices: list[int]) -> list:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [rows[i] for i in indices]


def write_json(path: Path, rows: list) -> None:
    path.write_text(json.dumps(rows, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def reward_test_rows(test_file: Path) -> list[dict]:
    """DeepCoder-shaped rows from rllm's tests/rewards/test_code_reward.py: ``tests`` is the
    literal ground truth a test passes to the reward function, ``solutions`` the code of the
    model response it expects to be correct; ``problem`` names the test."""
    tree = ast.parse(test_file.read_text(encoding="utf-8"))
    wanted = {"test_reward_taco_call_based", "test_reward_taco_call_based2",
              "test_reward_livecodebench", "test_reward_codeforces"}
    rows = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or fn.name not in wanted:
            continue
        response = None
        for stmt in fn.body:
            if not isinstance(stmt, ast.Assign) or not isinstance(stmt.targets[0], ast.Name):
                continue
            name = stmt.targets[0].id
            if name == "model_response":
                text = ast.literal_eval(stmt.value)
                response = re.findall(r"```(?:\w+)?\n(.*?)```", text, re.DOTALL)[-1]
            elif name in ("metadata", "public_test_case") and response is not None:
                tests = ast.literal_eval(stmt.value)
                rows.append({"problem": f"rllm tests/rewards/test_code_reward.py::{fn.name}",
                             "tests": tests, "solutions": [response.strip("\n") + "\n"]})
                response = None
    return rows


def python_dict_row(source_file: Path, name: str) -> dict:
    """The dict literal assigned to ``name`` at the top level of a Python file, as it is."""
    tree = ast.parse(source_file.read_text(encoding="utf-8"))
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
                and stmt.targets[0].id == name):
            return ast.literal_eval(stmt.value)
    raise LookupError(f"{source_file}: no top-level assignment to {name!r}")


def main(src: Path) -> None:
    write_gz(HERE / "HumanEval.sample.jsonl.gz",
             jsonl_lines(src / "HumanEval.jsonl.gz",
                         lambda r: r["task_id"] in ("HumanEval/0", "HumanEval/2", "HumanEval/32")))
    (HERE / "mbpp.sample.jsonl").write_text("".join(jsonl_lines(
        src / "mbpp.jsonl", lambda r: r["task_id"] in (2, 3, 11))), encoding="utf-8")
    sanitized = json.loads((src / "sanitized-mbpp.json").read_text(encoding="utf-8"))
    write_json(HERE / "sanitized-mbpp.sample.json",
               [r for r in sanitized if r["task_id"] in (2, 139)])
    write_json(HERE / "rllm_codeforces.sample.json", json_rows(src / "codeforces.json", [0, 133]))
    write_json(HERE / "rllm_code_contests.sample.json",
               json_rows(src / "code_contests.json", [0, 6]))
    write_json(HERE / "rllm_leetcode_test.sample.json", json_rows(src / "leetcode.json", [0]))
    write_json(HERE / "rllm_leetcode_train.sample.json",
               json_rows(src / "train_leetcode.json", [1, 68]))
    write_json(HERE / "rllm_reward_tests.json", reward_test_rows(src / "test_code_reward.py"))
    # rows the two-process assert harness must grade as their own harness does: LeetCode nodes
    # in and out, and MBPP values that are not plain data (complex, a type, a re.Match, the
    # program's objects linked by the test's set-up code, a module the test does not import)
    write_json(HERE / "rllm_leetcode_nodes.sample.json",
               json_rows(src / "train_leetcode.json", [76, 132, 146]))
    (HERE / "mbpp_values.sample.jsonl").write_text("".join(jsonl_lines(
        src / "mbpp.jsonl", lambda r: r["task_id"] in (124, 367, 533, 590, 596))), encoding="utf-8")
    write_json(HERE / "sanitized-mbpp_values.sample.json",
               [r for r in sanitized if r["task_id"] in (737, 787)])
    # LiveCodeBench code_generation_lite row 1873_A with its compressed private tests, from
    # Kaggle's code-generation example (the dataset itself is only on the Hugging Face hub)
    row = python_dict_row(src / "kaggle_code_generation.py", "question")
    (HERE / "livecodebench_1873_A.sample.jsonl").write_text(
        json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
