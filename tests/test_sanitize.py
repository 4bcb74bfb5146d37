"""The chat-reply sanitizer: on real stored SmolLM2-135M-Instruct replies and on hand-written edge cases.

The fixture ``tests/fixtures/smollm2_chat_replies.jsonl`` holds raw replies of the embedded SmolLM2-135M-Instruct in
chat mode (greedy, 256 new tokens, as the ``local`` profile generates them; English and Japanese prompts), picked
because they carry module-level code: prints, asserts, ``input()``, ``__main__`` blocks, unused helpers.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cltrlib.codegen.prompts import extract_code, to_sample_fields, truncate_at_stop
from cltrlib.codegen.sanitize import SANITIZER_VERSION, defines_entry_point, longest_parsable, sanitize
from cltrlib.data import load_humaneval, load_jhumaneval

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_chat_replies.jsonl"
_DEF_KINDS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign,
              ast.AnnAssign, ast.AugAssign)


def _replies() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _top_level_names(code: str) -> list[str]:
    names = []
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
    return names


def _problems() -> dict[tuple[str, str], object]:
    out = {}
    for p in load_humaneval() + load_jhumaneval():
        out[(p.language, p.task_id)] = p
    return out


def test_fixture_is_real_and_has_module_level_code():
    recs = _replies()
    assert len(recs) >= 6 and {r["language"] for r in recs} == {"en", "ja"}
    assert all(r["model"] == "smollm2-135m-instruct" and r["prompt_mode"] == "chat" for r in recs)
    with_junk = 0
    for r in recs:
        tree = ast.parse(longest_parsable(extract_code(truncate_at_stop(r["raw"], ("```",)))))
        with_junk += any(not isinstance(n, _DEF_KINDS) for n in tree.body)
    assert with_junk >= 4  # most picked replies would run model-written top-level code before the tests


@pytest.mark.parametrize("rec", _replies(), ids=lambda r: f"{r['language']}-{r['task_id']}")
def test_sanitized_real_replies(rec):
    problem = _problems()[(rec["language"], rec["task_id"])]
    code = extract_code(truncate_at_stop(rec["raw"], ("```",)))
    clean = sanitize(code, problem.entry_point)
    tree = ast.parse(clean)
    # Only imports and definitions are left at module level: nothing runs before the tests.
    assert all(isinstance(n, _DEF_KINDS) for n in tree.body), clean
    assert "__main__" not in clean and not any(isinstance(n, ast.Expr) for n in tree.body)
    # The entry point is kept whenever the (parsable part of the) reply defines it.
    original = ast.parse(longest_parsable(code))
    defined = {n.name for n in original.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    if problem.entry_point in defined:
        assert defines_entry_point(clean, problem.entry_point)
    # Every top-level helper the entry point calls by name is kept; helpers nothing reaches are dropped.
    kept = set(_top_level_names(clean))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in kept:
            used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert (used & defined) <= kept
    # The stored sample says which sanitizer assembled it, and the program starts with the problem's prompt.
    fields = to_sample_fields(problem, "chat", rec["raw"])
    assert fields["sanitizer"] == SANITIZER_VERSION
    if "solution" in fields:
        kept_whole = not defines_entry_point(clean, problem.entry_point)  # cut inside the definition
        assert fields["solution"].startswith(problem.prompt)
        assert fields["solution"].endswith(code if kept_whole else clean)


def test_drops_module_level_code_keeps_transitive_helpers():
    code = (
        "import math\n"
        "from typing import List\n"
        "from __future__ import annotations\n"
        "LIMIT = 10\n"
        "UNUSED = 3\n"
        "def helper(x):\n"
        "    return inner(x) + LIMIT\n"
        "def inner(x):\n"
        "    return math.floor(x)\n"
        "def unrelated():\n"
        "    return 1\n"
        "def f(xs: List[float]) -> int:\n"
        "    # sum the floors\n"
        "    return sum(helper(x) for x in xs)\n"
        "print(f([1.5]))\n"
        "assert f([2.0]) == 99\n"
        "n = int(input())\n"
        "if __name__ == '__main__':\n"
        "    print(f([1.0]))\n"
        "for i in range(3):\n"
        "    print(i)\n"
    )
    clean = sanitize(code, "f")
    assert _top_level_names(clean) == ["helper", "inner", "f"]
    assert "LIMIT = 10" in clean and "UNUSED" not in clean and "__future__" not in clean
    assert "import math" in clean and "from typing import List" in clean
    assert "# sum the floors" in clean  # original text, comments kept
    for dropped in ("print(", "assert", "input(", "__main__", "range(3)", "unrelated"):
        assert dropped not in clean
    ns: dict = {}
    exec(compile(clean, "<clean>", "exec"), ns)  # runs without reading stdin or printing
    assert ns["f"]([1.5, 2.5]) == 23


def test_class_decorators_shared_lines_and_redefinitions():
    code = (
        "import functools\n"
        "class Box:\n"
        "    def get(self):\n"
        "        return 4\n"
        "@functools.lru_cache(maxsize=None)\n"
        "def f(n):\n"
        "    return Box().get() + n\n"
        "x = 1; print(x)\n"
        "def f(n):\n"
        "    return Box().get() * n\n"
    )
    clean = sanitize(code, "f")
    assert "@functools.lru_cache(maxsize=None)" in clean and "class Box" in clean
    assert "print" not in clean and "x = 1" not in clean
    ns: dict = {}
    exec(clean, ns)
    assert ns["f"](3) == 12  # the last definition wins, as when the reply runs whole


def test_truncated_reply_keeps_longest_parsable_part():
    code = "def f(x):\n    return x + 1\n\nprint(f(1)\nThis function adds one."
    assert longest_parsable(code) == "def f(x):\n    return x + 1\n\n"
    assert sanitize(code, "f") == "def f(x):\n    return x + 1\n"
    assert longest_parsable("def f(:\n") == ""
    assert sanitize("   def f():\n       return 2\n   print(f())\n", "f") == "def f():\n    return 2\n"


def test_no_entry_point_keeps_only_imports():
    assert sanitize("import os\nprint('hi')\ndef g():\n    pass\n", "f") == "import os\n"


def test_chat_reply_program_assembly():
    p = load_humaneval()[2]  # truncate_number
    reply = ("def truncate_number(number: float) -> float:\n    return number % 1.0\n\n"
             "print(truncate_number(3.5))\nassert truncate_number(3.5) == 0.7\n```\nThis works.")
    fields = to_sample_fields(p, "chat", reply)
    assert fields["solution"] == p.prompt + "\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n"


def test_stored_runs_are_reassembled_from_raw_with_the_current_sanitizer():
    """A generation run stored before the sanitizer existed is re-read through it (no regeneration), and the
    evaluation run's key changes with ``SANITIZER_VERSION`` so old verdicts are not reused."""
    from cltrlib.codegen.run import GenerationConfig, GenerationRun
    from cltrlib.store import RunStore

    p = load_humaneval()[2]
    raw = "def truncate_number(number: float) -> float:\n    return number % 1.0\n\nprint(truncate_number(2.5))\n```"
    store = RunStore("generation", {"test": "sanitizer-reassembly"}, label="sanitizer-test")
    store.append([{"task_id": p.task_id, "sample_idx": 0, "language": "en", "model": "m", "prompt_mode": "chat",
                   "raw": raw, "solution": p.prompt + "\n" + raw[:-3]}])  # the old, unsanitized assembly
    run = GenerationRun(GenerationConfig(model="m", dataset="humaneval"), "chat", store)
    (rec,) = run.records()
    assert "print(" not in rec["solution"] and rec["sanitizer"] == SANITIZER_VERSION
    assert rec["solution"] == to_sample_fields(p, "chat", raw)["solution"]


def test_a_reply_cut_inside_the_entry_point_is_run_as_written():
    """At the token cap a reply can end inside the definition: no parsable part defines the entry point, so the
    program is the model's own code (its SyntaxError fails it), not the prompt's empty stub, and the explorer shows
    that code."""
    problem = load_humaneval()[0]
    cut = f"def {problem.entry_point}(numbers, threshold):\n    for i in range(len(numbers\n"
    fields = to_sample_fields(problem, "chat", cut)
    assert fields["solution"].endswith(f"def {problem.entry_point}(numbers, threshold):\n"
                                       "    for i in range(len(numbers\n")
    with pytest.raises(SyntaxError):
        compile(fields["solution"], "<sample>", "exec")
