"""Segmenter: byte-exact round trip on all of HumanEval, and the right pieces marked translatable."""

from __future__ import annotations

import pytest

from cltrlib.data import load_humaneval
from cltrlib.jhumaneval.examples import code_skeleton, match_examples
from cltrlib.jhumaneval.segment import CODE, TEXT, find_docstrings, reassemble, segment_prompt


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


def test_round_trip_is_byte_exact_for_all_164(humaneval):
    assert len(humaneval) == 164
    bad = [p.task_id for p in humaneval if reassemble(segment_prompt(p.prompt)) != p.prompt]
    assert bad == []
    # every prompt has prose to translate, and every segment is a verbatim slice
    for p in humaneval:
        sp = segment_prompt(p.prompt)
        assert sp.text_segments(), p.task_id
        assert all(s.text in p.prompt for s in sp.segments)


def test_code_examples_and_text_are_told_apart(humaneval):
    sp = segment_prompt(humaneval[0].prompt)
    kinds = [s.kind for s in sp.segments]
    assert kinds[0] == CODE and sp.segments[0].text.startswith("from typing import List\n\n\ndef has_close_elements(")
    assert [s.text for s in sp.segments if s.kind == TEXT] == [
        "Check if in given list of numbers, are any two numbers closer to each other than\n    given threshold."]
    assert sp.example_lines() == [">>> has_close_elements([1.0, 2.0, 3.0], 0.5)", "False",
                                  ">>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True"]
    assert sp.segments[2].source == ("Check if in given list of numbers, are any two numbers closer to each other "
                                     "than given threshold.")


@pytest.mark.parametrize("task, example", [
    (72, "will_it_fly([1, 2], 5) ➞ False"),          # arrow examples
    (88, "* sort_array([]) => []"),                  # bulleted examples
    (150, "for x_or_y(7, 34, 12) == 34"),            # 'for f(x) == y'
    (87, "[1,2,3,4,5,6],"),                           # continuation of a multi-line call
    (68, "Input: [4,2,3]"),                           # Input/Output blocks
    (105, "-> sort arr -> [1, 1, 2, 2, 3, 4, 5, 8]"),  # pseudo-code lines
])
def test_example_forms(humaneval, task, example):
    assert example in segment_prompt(humaneval[task].prompt).example_lines()


def test_text_segments_break_at_bullets(humaneval):
    texts = [s.source for _, s in segment_prompt(humaneval[141].prompt).text_segments()]
    assert "- The file's name contains exactly one dot '.'" in texts


def test_helpers_and_module_strings_stay_code(humaneval):
    # HumanEval/64 opens with FIX = \"\"\"...\"\"\" (not a docstring); 115 has `import math` before its docstring
    sp = segment_prompt(humaneval[64].prompt)
    assert "Add more test cases." in sp.segments[0].text and sp.segments[0].kind == CODE
    assert any("rectangular grid of wells" in s.text for _, s in segment_prompt(humaneval[115].prompt).text_segments())
    # HumanEval/10 has two functions, both docstrings are segmented
    assert len(find_docstrings(humaneval[10].prompt)) == 2


def test_translation_replaces_only_text(humaneval):
    p = humaneval[2]
    sp = segment_prompt(p.prompt)
    trs = {i: f"訳{i}\n二行目" for i, _ in sp.text_segments()}
    out = reassemble(sp, trs)
    resp = segment_prompt(out, sp.functions)
    assert resp.code_outside_docstrings() == sp.code_outside_docstrings()
    assert resp.example_lines() == sp.example_lines()
    assert "    訳2\n    二行目" in out or any(f"訳{i}\n    二行目" in out for i in trs)
    compile(out + p.canonical_solution, "x", "exec")


def test_broken_translation_can_still_be_segmented():
    broken = 'FIX = """\nx\n"""def f(s):\n    """日本語の説明。\n    >>> f(1)\n    2\n    """\n'
    sp = segment_prompt(broken, ["f"])
    assert sp.example_lines() == [">>> f(1)", "2"]
    assert reassemble(sp) == broken


def test_example_matching_tolerates_translated_prose_only():
    fns = ["multiply", "f"]
    m = match_examples(["multiply(148, 412) should return 16.", ">>> f(1)", "f(2) ==> True"],
                       ["multiply(148, 412) は16を返す。", ">> f(1)", "f(2) => True"], fns)
    assert [x.how for x in m] == ["code", "changed", "changed"]
    assert code_skeleton("multiply(148, 412) should return 16.", fns) == code_skeleton("multiply(148, 412) は16を返す。", fns)
    assert match_examples(["f(3) == 4"], ["全く別の文"], fns)[0].how == "missing"
