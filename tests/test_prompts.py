"""Prompt rendering and code extraction (mars2_env.prompts)."""

from __future__ import annotations

import json

import pytest

from mars2_env.problems import Problem, TestCase
from mars2_env.prompts import (
    DEFAULT_TEMPLATES,
    PromptTemplates,
    extract_code,
    kind_contract,
    messages_from_observation,
    render_messages,
)

STDIN = Problem(id="sum", statement="Read two integers and print their sum.", kind="stdin",
                public_tests=[TestCase("1 2\n", "3\n")])
METHOD = Problem(id="two", statement="Return the indices of two numbers adding to target.",
                 kind="functional", entry_point="twoSum",
                 starter_code="class Solution:\n    def twoSum(self, nums, target):\n        ")
FUNC = Problem(id="sq", statement="Return x squared.", kind="functional", entry_point="square",
               starter_code="")
ASSERT = Problem(id="mbpp1", statement="Write a function to add one.", kind="assert",
                 entry_point="add_one", public_tests=[TestCase("assert add_one(1) == 2")])


# -- extraction -----------------------------------------------------------------------------

def test_fenced_python_block():
    text = "Sure!\n```python\nprint(int(input()) + 1)\n```\nDone."
    assert extract_code(text) == "print(int(input()) + 1)\n"


def test_unfenced_code_is_taken_whole():
    assert extract_code("x = 1\nprint(x)") == "x = 1\nprint(x)\n"


def test_unfenced_prose_is_empty():
    assert extract_code("I think the answer uses dynamic programming over prefixes.") == ""


def test_last_python_block_wins_even_when_it_does_not_parse():
    # DESIGN: "the last python block, parsing or not: the executor reports a SyntaxError"
    text = ("First try:\n```python\nprint(1)\n```\nBetter:\n```py\nprint(2)\n```\n"
            "Broken:\n```python\ndef f(:\n```\n")
    assert extract_code(text) == "def f(:\n"


def test_python_tagged_block_beats_later_untagged_output():
    text = "```python\nprint(3)\n```\nExample output:\n```\n3\n```\n"
    assert extract_code(text) == "print(3)\n"


def test_untagged_block_used_when_no_python_block():
    assert extract_code("Answer:\n```\nprint('hi')\n```") == "print('hi')\n"


def test_other_language_blocks_are_not_code():
    assert extract_code("Run it with:\n```bash\nls\n```\n") == ""


def test_reasoning_before_code():
    text = ("Let me think. We need the sum: a + b. Edge cases: negatives.\n"
            "So the plan is `print(a+b)`.\n\n```python\na, b = map(int, input().split())\n"
            "print(a + b)\n```")
    assert extract_code(text) == "a, b = map(int, input().split())\nprint(a + b)\n"


def test_think_blocks_are_ignored():
    text = "<think>\n```python\nprint('draft')\n```\n</think>\nFinal:\n```python\nprint('final')\n```"
    assert extract_code(text) == "print('final')\n"
    # a template that opened <think> itself: everything before </think> is reasoning
    assert extract_code("```python\nprint(0)\n```\n</think>\nprint(5)") == "print(5)\n"
    # reasoning cut off by the length limit: no answer
    assert extract_code("<think>\n```python\nprint('draft')\n```\nhmm") == ""


def test_unclosed_final_fence():
    text = "Here:\n```python\ndef f(x):\n    return x * 2\n"
    assert extract_code(text) == "def f(x):\n    return x * 2\n"


def test_a_block_that_does_not_parse_is_kept():
    assert extract_code("```python\ndef f(:\n    pass\n```") == "def f(:\n    pass\n"


def test_nothing_to_extract_is_empty():
    assert extract_code("") == ""
    assert extract_code("```python\n\n```") == ""
    assert extract_code("The answer is to add the numbers (see above.") == ""


def test_empty_last_block_falls_back_to_the_last_non_empty_one():
    assert extract_code("```python\nprint(1)\n```\n```python\n```") == "print(1)\n"


def test_indented_fence_is_dedented_and_crlf_handled():
    text = "1. Code:\r\n    ```python\r\n    x = 2\r\n    print(x)\r\n    ```\r\n"
    assert extract_code(text) == "x = 2\nprint(x)\n"


def test_longer_fence_contains_inner_backticks():
    text = "````python\ns = '''\n```\n'''\nprint(s)\n````"
    assert extract_code(text) == "s = '''\n```\n'''\nprint(s)\n"


def test_extract_rejects_non_str():
    with pytest.raises(TypeError, match="str"):
        extract_code(None)  # type: ignore[arg-type]


# -- rendering ------------------------------------------------------------------------------

def test_kind_contracts():
    assert "standard input" in kind_contract(STDIN) and "standard output" in kind_contract(STDIN)
    assert kind_contract(METHOD).startswith("Implement the method `twoSum` of `class Solution`")
    assert kind_contract(FUNC).startswith("Implement a top-level function named `square`.")
    assert kind_contract(ASSERT).startswith("Define a function named `add_one`.")
    assert "assert" in kind_contract(ASSERT)


def test_generate_messages_stdin_exact():
    messages = render_messages(STDIN)
    assert messages == [
        {"role": "system", "content": DEFAULT_TEMPLATES.system},
        {"role": "user", "content":
            "Solve the following programming problem in Python 3.\n\n"
            "### Problem\nRead two integers and print their sum.\n\n"
            "### Format\n" + kind_contract(STDIN) + "\n\n"
            "Think briefly if you need to, then answer with exactly one fenced ```python code "
            "block containing the complete solution."},
    ]


def test_generate_messages_include_starter_code_for_functional():
    user = render_messages(METHOD)[1]["content"]
    assert ("### Starter code\n```python\nclass Solution:\n    def twoSum(self, nums, target):\n"
            "        \n```\n\n") in user
    assert kind_contract(METHOD) in user
    assert "### Starter code" not in render_messages(ASSERT)[1]["content"]
    assert "`add_one`" in render_messages(ASSERT)[1]["content"]


def test_refine_messages():
    user = render_messages(FUNC, parent_code="def square(x):\n    return x + x\n",
                           feedback="test 1: wrong answer\ninput: 3\nexpected: 9\ngot: 6")[1]
    assert user["role"] == "user"
    text = user["content"]
    assert "### Previous program\n```python\ndef square(x):\n    return x + x\n```" in text
    assert "### Execution feedback\ntest 1: wrong answer\ninput: 3\nexpected: 9\ngot: 6" in text
    assert text.startswith("The following Python 3 program")
    assert "Fix it." in text


def test_refine_with_empty_parent_code_is_still_refinement():
    text = render_messages(STDIN, parent_code="", feedback="")[1]["content"]
    assert "### Previous program" in text and "(no feedback)" in text


def test_custom_templates_and_no_system():
    t = PromptTemplates(system="", generate="{entry_point}|{statement}", refine="{code}>{feedback}")
    assert render_messages(ASSERT, templates=t) == [
        {"role": "user", "content": "add_one|Write a function to add one."}]
    assert render_messages(ASSERT, "x=1", "bad", templates=t) == [
        {"role": "user", "content": "x=1>bad"}]


def test_statement_braces_are_not_format_fields():
    p = Problem(id="b", statement="Print {x} literally.", kind="stdin")
    assert "Print {x} literally." in render_messages(p)[1]["content"]


def test_bad_template_field_is_named():
    with pytest.raises(ValueError, match="unknown field {nope}"):
        PromptTemplates(system="", generate="{nope}", refine="")


def test_problem_dict_form_renders_like_problem():
    assert render_messages(METHOD.to_dict()) == render_messages(METHOD)


def test_messages_from_observation_round_trip():
    messages = render_messages(STDIN)
    assert messages_from_observation({"prompt": json.dumps(messages)}) == messages
    with pytest.raises(ValueError, match="prompt"):
        messages_from_observation({"statement": "x"})
    with pytest.raises(ValueError, match="not JSON"):
        messages_from_observation({"prompt": "{oops"})
    with pytest.raises(ValueError, match="role"):
        messages_from_observation({"prompt": json.dumps([{"content": "hi"}])})


# -- responses the embedded SmolLM2-135M really wrote (scripts/measure_trivial.py logs) --------

def test_real_response_stray_fence_before_the_python_block():
    text = ('```\n```python\ndef print_to_screen(text):\n    print(f"Hello, World!")\n\n'
            'print_to_screen(f"Hello, World!")\n```\n\nThis is the complete solution. The '
            '`print_to_screen` function accepts a string as an argument and prints the contents.')
    assert extract_code(text) == ('def print_to_screen(text):\n    print(f"Hello, World!")\n\n'
                                  'print_to_screen(f"Hello, World!")\n')


def test_real_response_cut_off_inside_a_string_keeps_the_broken_program():
    text = ('```python\ndef hello_print(prompt):\n    print(f"Hello, {prompt}!")\n\n'
            'hello_print("hello_print_hello_print_hello_hello_hello_hello_hello_hell')
    code = extract_code(text)
    assert code.startswith("def hello_print(prompt):") and code.endswith("_hell\n")


def test_has_closed_code_block():
    from mars2_env.prompts import has_closed_code_block

    assert has_closed_code_block("Here:\n```python\nprint(1)\n```")
    assert has_closed_code_block("```py\nx = 1\n```\nmore text")
    assert not has_closed_code_block("```python\nprint(1)\n")          # still open
    assert not has_closed_code_block("```\n```python\nprint(1)")       # stray fence, open block
    assert not has_closed_code_block("```python\n```")                 # empty
    assert not has_closed_code_block("```bash\nls\n```")               # not python
    assert not has_closed_code_block("<think>\n```python\nprint(1)\n```\n")  # still reasoning
    assert has_closed_code_block("<think>hm</think>\n```python\nprint(1)\n```")
