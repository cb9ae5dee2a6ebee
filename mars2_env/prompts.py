"""Prompt templates (generation and refinement) and code extraction from model responses.

The environment renders the ``prompt`` observation with `render_messages` and turns an agent's
response back into a program with `extract_code`; both live here so that `mars2_env` needs no
agent code. Pure standard library.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PromptTemplates",
    "DEFAULT_TEMPLATES",
    "COMPACT_TEMPLATES",
    "TEMPLATE_STYLES",
    "TEMPLATE_FIELDS",
    "kind_contract",
    "render_messages",
    "extract_code",
    "has_closed_code_block",
    "messages_from_observation",
]

#: Names a template may use in ``{...}``; any subset is fine.
TEMPLATE_FIELDS: tuple[str, ...] = (
    "title", "statement", "starter_code", "starter_section", "contract", "entry_point",
    "code", "feedback",
)


@dataclass(frozen=True)
class PromptTemplates:
    """Chat prompt templates, filled with `str.format` using the names in `TEMPLATE_FIELDS`.

    ``system`` is the system message (empty: no system message), ``generate`` the user message
    for a new program, ``refine`` the user message for fixing a previous program.
    ``starter_section`` is the starter code already wrapped in a fenced block with a heading,
    or "" when the problem has none, so templates need no conditionals.
    """

    system: str
    generate: str
    refine: str

    def __post_init__(self) -> None:
        for name in ("system", "generate", "refine"):
            text = getattr(self, name)
            if not isinstance(text, str):
                raise TypeError(f"PromptTemplates.{name} must be a str, got {type(text).__name__}")
            try:
                text.format_map(_Probe())
            except (ValueError, IndexError) as exc:
                raise ValueError(f"PromptTemplates.{name} is not a valid str.format template: {exc}"
                                 ) from exc


class _Probe(dict):
    """format_map target that accepts the known fields and names an unknown one."""

    def __missing__(self, key: str) -> str:
        if key not in TEMPLATE_FIELDS:
            raise ValueError(f"unknown field {{{key}}}; known fields: {', '.join(TEMPLATE_FIELDS)}")
        return ""


DEFAULT_TEMPLATES = PromptTemplates(
    system=(
        "You are an expert competitive programmer. You write correct, efficient Python 3 "
        "programs."
    ),
    generate=(
        "Solve the following programming problem in Python 3.\n\n"
        "### Problem\n{statement}\n\n"
        "{starter_section}"
        "### Format\n{contract}\n\n"
        "Think briefly if you need to, then answer with exactly one fenced ```python code block "
        "containing the complete solution."
    ),
    refine=(
        "The following Python 3 program for this problem is not correct.\n\n"
        "### Problem\n{statement}\n\n"
        "### Format\n{contract}\n\n"
        "### Previous program\n```python\n{code}\n```\n\n"
        "### Execution feedback\n{feedback}\n\n"
        "Fix it. Answer with exactly one fenced ```python code block containing the complete "
        "corrected solution."
    ),
)


#: A shorter prompt for very small models (the embedded SmolLM2-135M): the statement, the
#: contract and one instruction, no role-play system message.
COMPACT_TEMPLATES = PromptTemplates(
    system="",
    generate=(
        "{statement}\n\n{starter_section}{contract}\n\n"
        "Reply with the complete Python 3 program in one ```python code block."
    ),
    refine=(
        "{statement}\n\n{contract}\n\n"
        "This program is wrong:\n```python\n{code}\n```\n\n{feedback}\n\n"
        "Reply with the corrected Python 3 program in one ```python code block."
    ),
)

#: Prompt styles by name (`--prompt-style` of the command line).
TEMPLATE_STYLES: dict[str, PromptTemplates] = {
    "default": DEFAULT_TEMPLATES,
    "compact": COMPACT_TEMPLATES,
}


def _get(problem: Any, name: str, default: Any = None) -> Any:
    """Read a field from a `Problem` or from its dict form."""
    if isinstance(problem, dict):
        return problem.get(name, default)
    return getattr(problem, name, default)


def _has_solution_class(starter_code: str) -> bool:
    return re.search(r"^\s*class\s+Solution\b", starter_code or "", re.MULTILINE) is not None


def kind_contract(problem: Any) -> str:
    """The input/output contract of the problem's kind, as an instruction to the model."""
    kind = _get(problem, "kind", "stdin")
    entry = _get(problem, "entry_point")
    starter = _get(problem, "starter_code", "") or ""
    if kind == "stdin":
        return ("Write a complete program that reads the input from standard input and writes "
                "the answer to standard output, exactly in the format the problem asks for. "
                "Do not print anything else.")
    if kind == "functional":
        if not entry:
            raise ValueError(f"functional problem {_get(problem, 'id')!r} has no entry_point")
        if _has_solution_class(starter):
            where = (f"Implement the method `{entry}` of `class Solution`, keeping the "
                     f"signature of the starter code.")
        else:
            where = f"Implement a top-level function named `{entry}`."
        return (f"{where} It is called with the arguments as given in the problem and must "
                f"return the answer. Do not read from standard input and do not print.")
    if kind == "assert":
        if entry:
            return (f"Define a function named `{entry}`. It is checked by assert statements "
                    f"that call it; do not read from standard input and do not print.")
        return ("Define the function(s) the problem asks for. They are checked by assert "
                "statements; do not read from standard input and do not print.")
    raise ValueError(f"unknown problem kind {kind!r}; expected stdin, functional or assert")


def render_messages(problem: Any, parent_code: str | None = None, feedback: str | None = None,
                    templates: PromptTemplates = DEFAULT_TEMPLATES) -> list[dict[str, str]]:
    """Chat messages asking for a new program (``parent_code is None``) or a fix of ``parent_code``.

    ``problem`` is a `mars2_env.problems.Problem` (or its dict form); ``feedback`` is the parent's
    execution feedback (`mars2_env.execution.format_feedback`).
    """
    if not isinstance(templates, PromptTemplates):
        raise TypeError(f"templates must be a PromptTemplates, got {type(templates).__name__}")
    starter = (_get(problem, "starter_code", "") or "").strip("\n")
    fields = {
        "title": _get(problem, "title", "") or "",
        "statement": (_get(problem, "statement", "") or "").strip(),
        "starter_code": starter,
        "starter_section": f"### Starter code\n```python\n{starter}\n```\n\n" if starter.strip()
        else "",
        "contract": kind_contract(problem),
        "entry_point": _get(problem, "entry_point") or "",
        "code": (parent_code or "").strip("\n"),
        "feedback": (feedback or "").strip() or "(no feedback)",
    }
    user = (templates.generate if parent_code is None else templates.refine).format_map(fields)
    messages = []
    if templates.system:
        messages.append({"role": "system", "content": templates.system.format_map(fields)})
    messages.append({"role": "user", "content": user})
    return messages


def messages_from_observation(obs: dict) -> list[dict[str, str]]:
    """Decode the chat messages of an environment observation (``obs["prompt"]`` is their JSON)."""
    if not isinstance(obs, dict) or "prompt" not in obs:
        raise ValueError("observation must be a dict with a 'prompt' key (JSON list of chat "
                         "messages), as the mars2 environments emit")
    raw = obs["prompt"]
    try:
        messages = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ValueError(f"observation 'prompt' is not JSON chat messages: {exc}") from exc
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages):
        raise ValueError("observation 'prompt' must decode to a non-empty list of "
                         "{'role': str, 'content': str} messages")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


# ---------------------------------------------------------------------------------------------
# Code extraction

_PY_TAGS = {"python", "py", "python3", "py3"}
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)[^`]*$")
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def _strip_reasoning(text: str) -> str:
    """Remove ``<think>...</think>`` reasoning; an unclosed ``<think>`` runs to the end, a lone
    ``</think>`` (the template opened it) ends reasoning that started at the beginning."""
    text = _THINK_BLOCK.sub("", text)
    low = text.lower()
    close = low.rfind("</think>")
    if close != -1:
        text = text[close + len("</think>"):]
        low = text.lower()
    opened = low.find("<think>")
    if opened != -1:
        text = text[:opened]
    return text


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of each fenced block in order; an unclosed last block runs to the end."""
    blocks: list[tuple[str, str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").lower()
        close = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        body: list[str] = []
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            if _opens_python_block(lines[i], fence):
                break  # a stray fence before "```python" (small models write "```\n```python")
            body.append(lines[i])
            i += 1
        else:
            i += 1  # skip the closing fence (or run past the end)
        blocks.append((info, textwrap.dedent("\n".join(body))))
    return blocks


def _opens_python_block(line: str, fence: str) -> bool:
    """True for a line such as "```python" (same fence character, python tag) inside a block:
    never valid content of a program, so the model meant to start a new block there."""
    m = _FENCE_OPEN.match(line)
    return bool(m) and m.group("fence")[0] == fence[0] and m.group("info").lower() in _PY_TAGS


def parses_as_python(code: str) -> bool:
    """True when ``code`` is non-empty and compiles."""
    if not code.strip():
        return False
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _clean(code: str) -> str:
    return code.strip("\n").rstrip() + "\n"


def extract_code(text: str) -> str:
    """The program in a model response, or "" when there is none.

    Reasoning in ``<think>...</think>`` is ignored. The answer is the last non-empty fenced block
    tagged python/py, else the last non-empty untagged block (blocks tagged with another language
    are never code), whether or not it parses: a program with a syntax error is still the
    program the model wrote, and the executor reports its ``SyntaxError`` (line and caret) as
    feedback for refinement. An unclosed final fence runs to the end of the text. Without any
    such block, the whole text if it parses as Python, else "".
    """
    if not isinstance(text, str):
        raise TypeError(f"response must be a str, got {type(text).__name__}")
    text = _strip_reasoning(text.replace("\r\n", "\n").replace("\r", "\n"))
    blocks = _fenced_blocks(text)
    for wanted in (lambda tag: tag in _PY_TAGS, lambda tag: tag == ""):
        for tag, body in reversed(blocks):
            if wanted(tag) and body.strip():
                return _clean(body)
    if parses_as_python(text):
        return _clean(text)
    return ""


_CLOSED_PY_BLOCK = re.compile(
    r"(?:^|\n)[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?:python3?|py3?)[ \t]*\n"
    r"(?P<body>.*?\S.*?)\n[ \t]*(?P=fence)[ \t]*(?:\n|$)", re.DOTALL | re.IGNORECASE)


def has_closed_code_block(text: str) -> bool:
    """True once a response holds a complete, non-empty ```python block outside reasoning:
    generation may stop there (see `agents.hf.HFAgent(stop_at_code_block=True)`)."""
    low = text.lower()
    if "<think>" in low and "</think>" not in low[low.rfind("<think>"):]:
        return False  # still reasoning
    return _CLOSED_PY_BLOCK.search(_strip_reasoning(text)) is not None
