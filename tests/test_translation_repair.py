"""The repair step's copied-demonstration check: a few-shot base model that answers with a demonstration's Japanese
(another task's prose from its prompt) instead of translating. Pure functions on fixed texts, the published
JHumanEval and the committed raw build (no model, no server)."""

from __future__ import annotations

import pytest

from cltrlib.data.problems import JHUMANEVAL_RELPATH, load_humaneval, read_jsonl, resolve_data_file
from cltrlib.jhumaneval.backends import published_shots
from cltrlib.jhumaneval.mt import build_paths
from cltrlib.jhumaneval.quality import prose_by_task
from cltrlib.jhumaneval.repair import code_names, copied_run, post_edit, segment_findings
from cltrlib.models import GEMMA3

GCD = "整数 a と b の最大公約数を返す"  # HumanEval/13's published prose: the first demonstration
SUM_PRODUCT = "与えられた整数リストに対して、リスト内のすべての整数の和と積からなるタプルを返す"


def test_a_copied_demonstration_is_found_and_shared_wording_is_not():
    assert copied_run(f"語尾の文字列を変換する関数\n\n{GCD}", [GCD, SUM_PRODUCT]) == GCD
    assert copied_run("与えられたリスト内のすべての整数の和と積からなるタプルを返す", [SUM_PRODUCT]) is not None
    # Honest translations of "Given a list of integers, ..." share ~10 characters with the second demonstration
    assert copied_run("与えられた整数リストに対して、最大値を返す", [SUM_PRODUCT]) is None
    assert copied_run(GCD, []) is None and copied_run("", [GCD]) is None


def test_the_finding_needs_the_demonstrations_shown_and_the_post_edit_cuts_the_copy():
    p = load_humaneval()[64]
    names = code_names(p)
    src = "Write a function vowels_count which takes a string representing a word as input and returns the number"
    draft = f"文字列を入力として受け取り母音の数を返す関数 vowels_count を書く\n\n{GCD}"
    assert "copied_demonstration" not in [k for k, _ in segment_findings(src, draft, names)]
    found = segment_findings(src, draft, names, [GCD])
    assert [k for k, _ in found] == ["copied_demonstration"] and GCD in found[0][1]
    text, applied = post_edit(src, draft, [GCD])
    assert text == "文字列を入力として受け取り母音の数を返す関数 vowels_count を書く"
    assert applied == ["cut_copied_demonstration"]
    text, applied = post_edit("Return x.", GCD, [GCD])  # nothing but the copy: the English comes back
    assert text == "Return x." and applied == ["cut_copied_demonstration", "restore_english"]


@pytest.fixture(scope="module")
def shots():
    return published_shots()


def _flagged(rows, shots) -> dict[str, str]:
    out = {}
    for tid, text in prose_by_task(rows).items():
        demos = [ja for t, _, ja, _ in shots if t != tid][:3]
        run = copied_run(text, demos)
        if run:
            out[tid] = run
    return out


def test_no_published_task_is_flagged_but_the_raw_build_copies_often(shots):
    """Specificity on the human-reviewed set (0 of 164 tasks), and the finding itself on the committed raw build of
    Gemma-3-270M: it copied the first demonstration into 39 tasks (the repair step now finds and cuts these)."""
    assert _flagged(read_jsonl(resolve_data_file(JHUMANEVAL_RELPATH)), shots) == {}
    raw = _flagged(read_jsonl(build_paths(GEMMA3)["mt"]), shots)
    assert len(raw) >= 30 and sum(run.strip() == GCD for run in raw.values()) >= 30
