"""Glossary and post-edit table: what a machine translator gets wrong, fixed after translation.

Paper A repaired terminology by hand and with GPT-4 against the code. The mechanical
part of that is a table: when the English source contains a term, its translation
must contain the required rendering, and known wrong renderings are replaced by it
(e.g. "Kata", a coding-kata, must stay "Kata" and not become 型). Entries whose
required rendering is still missing after the post-edit are reported, not hidden.
The post-edit table holds reviewed, task-specific fixes (the hand-review step); each
one says which validator finding it answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class GlossaryEntry:
    source: str  # English term (matched as a whole word, case-sensitive)
    target: str  # required rendering in the translation
    wrong: tuple[str, ...] = ()  # renderings to replace by ``target``
    note: str = ""


# Terms of HumanEval prompts that MT renders wrongly; extend with --glossary FILE.
DEFAULT_ENTRIES: tuple[GlossaryEntry, ...] = (
    GlossaryEntry("Kata", "Kata", ("型", "カタ", "形"), "HumanEval/116: a coding kata, not a type"),
    GlossaryEntry("palindrome", "回文", ("パリンドローム",), "standard Japanese term"),
    GlossaryEntry("string", "文字列", ("ストリング", "弦"), "Python str, not a musical string"),
)


@dataclass(frozen=True)
class PostEdit:
    """A reviewed fix of one task's translation: replace ``find`` by ``replace`` (the paper's hand review)."""

    task_id: str
    find: str
    replace: str
    note: str = ""


# Defects that `validate` finds in the published translation's prose, fixed by review.
DEFAULT_POST_EDITS: tuple[PostEdit, ...] = (
    PostEdit("HumanEval/129", "(N >= 2))", "(N >= 2)", "bracket_mismatch: a stray ')' in the published text"),
    PostEdit("HumanEval/143", "sentence contains only letters", "sentence は英字のみを含む",
             "untranslated_english: the published text left this constraint in English"),
    PostEdit("HumanEval/66", "Examples:", "例:", "untranslated_heading"),
    PostEdit("HumanEval/99", "Note:", "注意:", "untranslated_heading"),
    PostEdit("HumanEval/106", "Example:", "例:", "untranslated_heading"),
    # found by review, not by a check: the quotes around the note symbols were lost or became 」
    PostEdit("HumanEval/17", "o' - 全音符", "'o' - 全音符", "review: quoted symbol lost its opening quote"),
    PostEdit("HumanEval/17", "o|' - 2分音符", "'o|' - 2分音符", "review: quoted symbol lost its opening quote"),
    PostEdit("HumanEval/17", ".|」-4分音符", "'.|' - 4分音符", "review: quote became a Japanese bracket"),
)


@dataclass
class Glossary:
    entries: list[GlossaryEntry] = field(default_factory=lambda: list(DEFAULT_ENTRIES))
    post_edits: list[PostEdit] = field(default_factory=lambda: list(DEFAULT_POST_EDITS))

    @classmethod
    def load(cls, path: str | Path | None = None, include_defaults: bool = True) -> Glossary:
        """Defaults plus a JSON file: a list of {"source", "target", "wrong": [...], "note"}."""
        entries = list(DEFAULT_ENTRIES) if include_defaults else []
        edits = list(DEFAULT_POST_EDITS) if include_defaults else []
        if path is not None:
            path = Path(path)
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"glossary {path}: cannot read it as JSON ({exc})") from None
            if not isinstance(raw, list):
                raise ValueError(f"glossary {path}: expected a JSON list of entries")
            for k, e in enumerate(raw):
                if isinstance(e, dict) and {"task_id", "find", "replace"} <= set(e):
                    edits.append(PostEdit(e["task_id"], e["find"], e["replace"], e.get("note", "")))
                    continue
                if not isinstance(e, dict) or not {"source", "target"} <= set(e):
                    raise ValueError(f"glossary {path}: entry {k} needs 'source' and 'target' (a term) "
                                     "or 'task_id', 'find' and 'replace' (a post-edit)")
                entries.append(GlossaryEntry(e["source"], e["target"], tuple(e.get("wrong", ())), e.get("note", "")))
        return cls(entries, edits)

    def apply_post_edits(self, task_id: str, translation: str) -> tuple[str, list[PostEdit]]:
        """Apply the reviewed fixes for ``task_id`` that occur in ``translation``."""
        applied = []
        for e in self.post_edits:
            if e.task_id == task_id and e.find in translation:
                translation = translation.replace(e.find, e.replace)
                applied.append(e)
        return translation, applied

    def applicable(self, source: str) -> list[GlossaryEntry]:
        return [e for e in self.entries if re.search(rf"(?<![A-Za-z]){re.escape(e.source)}(?![A-Za-z])", source)]

    def post_edit(self, source: str, translation: str) -> tuple[str, list[str]]:
        """Apply the table to one translation; return (fixed text, problems left)."""
        problems = []
        for e in self.applicable(source):
            for w in e.wrong:
                if w in translation and e.target not in translation:
                    translation = translation.replace(w, e.target)
            if e.target not in translation:
                problems.append(f"{e.source!r} should be rendered {e.target!r}")
        return translation, problems

    def instructions(self, sources: Iterable[str]) -> list[str]:
        """Lines for an LLM prompt: the terms that occur in ``sources``."""
        seen: dict[str, GlossaryEntry] = {}
        for s in sources:
            for e in self.applicable(s):
                seen[e.source] = e
        return [f"- {e.source} → {e.target}" + (f" (never {', '.join(e.wrong)})" if e.wrong else "")
                for e in seen.values()]
