"""Paper A's repair step, automated and counted: the validator's findings on each translated segment are fed back to
the translator for a bounded number of rounds, then deterministic post-edits fix what is still wrong.

Paper A repaired its DeepL draft with GPT-4 against the code and then reviewed every task by hand. Here a finding is
one of the validator's own checks (``cltrlib.jhumaneval.validate``) applied to a single segment, so a repair prompt can
say what was wrong with *that* text: English left untranslated, no Japanese at all, brackets that no longer balance
as in the English, an identifier / number / quoted literal of the English missing from the translation, a runaway
repetition, a line that would change the code (a docstring quote, a ``>>>`` doctest), or a **copied demonstration**:
a few-shot translator (a base model) that answers with most of a demonstration's Japanese (another task's prose from
its prompt) instead of translating the segment. Task-level findings of the full validator (parse errors, changed or
missing examples, changed code) flag every segment of their task.

Rounds re-translate only the flagged segments (``translate_one(text, note=finding)``, cached like any translation, so
a rerun costs nothing); a round's output replaces a draft only when it has fewer findings. The post-edits then:
cut a runaway repetition, drop lines that would change the code, remove brackets the English does not have, cut a
copied demonstration out, and put the English back where a segment is still without any Japanese (an honest
"untranslated", not a garbled or borrowed one).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cltrlib.data.problems import Problem
from cltrlib.jhumaneval.segment import SegmentedPrompt, reassemble
from cltrlib.jhumaneval.validate import bracket_balance, check_translation, japanese_share, untranslated_english

_TOKEN = re.compile(r"`[^`]+`|'[^'\s][^']*'|\"[^\"]+\"|\b\d+(?:\.\d+)?\b|\b[A-Za-z_]\w*\b")
_REPEAT = re.compile(r"(.{1,12}?)\1{4,}", re.S)  # a unit of up to 12 characters repeated 5+ times in a row
REPAIR_VERSION = "3"  # bump when a repair prompt changes: part of the repair cache key and of a build's identity
TASK_CHECKS = ("parse_error", "code_changed", "docstring_count", "example_changed", "example_missing")
# A copy: a run shared with a demonstration's target that covers COPY_SHARE of it and has at least COPY_MIN_CHARS
# characters. Both bounds matter: a 14-character demonstration copied whole is a copy, while two honest translations of
# "Given a list of integers" share ~10 characters ("与えられた整数のリスト") that are not one.
COPY_MIN_CHARS = 10
COPY_SHARE = 0.6
Demonstrations = Callable[[str], Sequence[str]]  # segment source -> the targets of the demonstrations shown with it


def copied_run(translation: str, demonstrations: Sequence[str]) -> str | None:
    """The longest run of ``translation`` copied from one of ``demonstrations`` (targets shown in the prompt), when it
    is long enough to be a copy rather than shared wording; else None."""
    from difflib import SequenceMatcher

    best = ""
    for demo in demonstrations:
        demo = demo.strip()
        if not demo:
            continue
        m = SequenceMatcher(None, translation, demo, autojunk=False).find_longest_match(0, len(translation), 0,
                                                                                        len(demo))
        run = translation[m.a:m.a + m.size]
        if len(run.strip()) >= max(COPY_MIN_CHARS, COPY_SHARE * len(demo)) and len(run) > len(best):
            best = run
    return best or None


@dataclass
class RepairLog:
    """Findings per round: ``rounds[0]`` is the raw translation, ``rounds[k]`` after repair round k, and
    ``post_edited`` after the deterministic post-edits; each maps a finding kind to its number of segments."""

    rounds: list[dict[str, int]] = field(default_factory=list)
    retranslated: list[int] = field(default_factory=list)  # segments re-translated per round
    improved: list[int] = field(default_factory=list)  # ... whose new draft had fewer findings (kept)
    post_edits: dict[str, int] = field(default_factory=dict)  # post-edit kind -> segments changed
    post_edited: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"rounds": self.rounds, "retranslated": self.retranslated, "improved": self.improved,
                "post_edits": self.post_edits, "post_edited": self.post_edited}


def code_names(problem: Problem) -> set[str]:
    """Names of the problem's code (variables, arguments, functions): kept verbatim by a translation."""
    tree = ast.parse(problem.prompt + problem.canonical_solution)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    names |= {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    return names


def kept_tokens(source: str, names: set[str]) -> list[str]:
    """What a translation of ``source`` must contain verbatim: quoted literals, numbers and code names."""
    out = []
    for tok in _TOKEN.findall(source):
        if tok[0] in "`'\"" or tok[0].isdigit() or (tok in names and len(tok) > 1):
            out.append(tok.strip("`") if tok[0] == "`" else tok)
    return list(dict.fromkeys(out))


def segment_findings(source: str, translation: str, names: set[str],
                     demonstrations: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(kind, what to tell the translator) for one segment's translation; empty when it passes. ``demonstrations``:
    the targets of the few-shot demonstrations shown with this segment (none of them its own task's)."""
    found: list[tuple[str, str]] = []
    lines = [ln.strip() for ln in translation.split("\n")]
    if not translation.strip():
        return [("empty", "the translation was empty")]
    if _REPEAT.search(translation):
        found.append(("repetition", "it repeated the same characters over and over"))
    if '"""' in translation or "'''" in translation or any(ln.startswith(">>>") for ln in lines):
        found.append(("breaks_code", "it contained a docstring quote or a >>> line"))
    if japanese_share(lines) == 0.0:
        found.append(("no_japanese", "it contained no Japanese"))
    else:
        runs = untranslated_english(lines, names)
        if runs:
            found.append(("untranslated_english", f"English was left untranslated: {runs[0]!r}"))
    if bracket_balance(source) != bracket_balance(translation):
        found.append(("bracket_mismatch", "its brackets do not balance as in the English"))
    missing = [t for t in kept_tokens(source, names) if t not in translation]
    if missing:
        found.append(("token_missing", "it lost " + ", ".join(missing[:4]) + " (keep them exactly)"))
    copied = copied_run(translation, demonstrations)
    if copied:
        found.append(("copied_demonstration", f"it copied an example translation ({copied.strip()[:40]!r}) instead "
                                              "of translating this text"))
    return found


def _task_findings(problem: Problem, sp: SegmentedPrompt, trs: dict[int, str]) -> list[tuple[str, str]]:
    row = {"prompt": reassemble(sp, trs), "prompt_en": problem.prompt, "entry_point": problem.entry_point,
           "canonical_solution": problem.canonical_solution, "test": problem.test}
    return [(d.check, f"the task's {d.check.replace('_', ' ')}: {d.detail[:80]}")
            for d in check_translation(row, problem).defects if d.check in TASK_CHECKS]


def findings(problems: Sequence[Problem], segmented: Sequence[SegmentedPrompt], per_task: Sequence[dict[int, str]],
             demonstrations: Demonstrations | None = None) -> dict[tuple[int, int], list[tuple[str, str]]]:
    """Findings per (task index, segment index), segment checks plus the task's own ones."""
    out: dict[tuple[int, int], list[tuple[str, str]]] = {}
    for k, (p, sp, trs) in enumerate(zip(problems, segmented, per_task, strict=True)):
        names = code_names(p)
        task_level = _task_findings(p, sp, trs)
        for i, tr in trs.items():
            src = sp.segments[i].source
            demos = demonstrations(src) if demonstrations else ()
            f = segment_findings(src, tr, names, demos) + task_level
            if f:
                out[(k, i)] = f
    return out


def count(found: dict[tuple[int, int], list[tuple[str, str]]]) -> dict[str, int]:
    """Segments per finding kind, plus ``segments`` (flagged segments) and ``tasks`` (tasks with any finding)."""
    c: dict[str, int] = {}
    for fs in found.values():
        for kind in dict.fromkeys(k for k, _ in fs):
            c[kind] = c.get(kind, 0) + 1
    c["segments"] = len(found)
    c["tasks"] = len({k for k, _ in found})
    return dict(sorted(c.items()))


class RepairTranslator:
    """The base translator in repair mode, as a ``Translator`` for ``translate_texts`` (cache and progress): each
    text is a JSON item {"source", "note"}; its name extends the base's, so repairs are cached on their own."""

    batch_size = 4

    def __init__(self, base):
        self.base = base
        self.name = base.name + f":repair{REPAIR_VERSION}"

    @staticmethod
    def item(source: str, note: str, attempt: str) -> str:
        """The finding and the attempt it was found in: each round shows the model its last rejected attempt, so a
        second round is not the first one's prompt again (greedy decoding would repeat its answer)."""
        note = f"{note}; the rejected attempt was: {attempt!r}" if attempt.strip() else f"{note}"
        return json.dumps({"source": source, "note": note}, ensure_ascii=False, sort_keys=True)

    def translate_batch(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        out = []
        for t in texts:
            it = json.loads(t)
            out.append(self.base.translate_one(it["source"], src, tgt, note=it["note"]))
        return out


def _drop_unmatched(source: str, text: str) -> str:
    """Remove brackets of ``text`` that leave it unbalanced where ``source`` is balanced per bracket kind."""
    pairs = {")": "(", "]": "[", "}": "{", "）": "（", "］": "［", "｝": "｛"}
    opens = set(pairs.values())
    target = bracket_balance(source)
    if bracket_balance(text) == target or any(target):
        return text  # an English text that is itself unbalanced: leave the draft alone
    stack: list[int] = []
    drop: set[int] = set()
    for j, ch in enumerate(text):
        if ch in opens:
            stack.append(j)
        elif ch in pairs:
            if stack and text[stack[-1]] == pairs[ch]:
                stack.pop()
            else:
                drop.add(j)
    drop |= set(stack)
    return "".join(ch for j, ch in enumerate(text) if j not in drop)


def post_edit(source: str, translation: str, demonstrations: Sequence[str] = ()) -> tuple[str, list[str]]:
    """The deterministic post-edits of one segment: (edited text, kinds applied)."""
    applied = []
    text = translation
    copied = copied_run(text, demonstrations)
    if copied:  # a borrowed sentence says something else: cut it (the English comes back if nothing is left)
        while copied:
            text = "\n".join(ln.rstrip() for ln in text.replace(copied, "", 1).split("\n"))
            text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
            copied = copied_run(text, demonstrations)
        applied.append("cut_copied_demonstration")
    m = _REPEAT.search(text)
    if m:
        text = (text[:m.start()] + m.group(1)).rstrip()
        applied.append("cut_repetition")
    if '"""' in text or "'''" in text or any(ln.strip().startswith(">>>") for ln in text.split("\n")):
        text = "\n".join(ln for ln in text.replace('"""', "").replace("'''", "").split("\n")
                         if not ln.strip().startswith(">>>"))
        applied.append("drop_code_lines")
    fixed = _drop_unmatched(source, text)
    if fixed != text:
        text = fixed
        applied.append("drop_unmatched_brackets")
    if not text.strip() or japanese_share([text]) == 0.0:
        text = source
        applied.append("restore_english")
    return text, applied


def repair(translator, problems: Sequence[Problem], segmented: Sequence[SegmentedPrompt],
           per_task: list[dict[int, str]], rounds: int = 2, src: str = "en", tgt: str = "ja", cache=None,
           progress: bool = True) -> tuple[list[dict[int, str]], RepairLog]:
    """``rounds`` repair rounds through ``translator`` (needs ``translate_one``), then the post-edits; returns the
    repaired translations (a new list) and the findings counted per round."""
    from cltrlib.jhumaneval.backends import translate_texts

    per_task = [dict(t) for t in per_task]
    log = RepairLog()
    shots_for = getattr(translator, "shots_for", None)  # a few-shot translator: what each segment was shown

    def demos(source: str) -> list[str]:
        return [t for _, t in shots_for(source, src, tgt)] if shots_for else []

    found = findings(problems, segmented, per_task, demos)
    log.rounds.append(count(found))
    rep = RepairTranslator(translator)
    last = {(k, i): tr for k, trs in enumerate(per_task) for i, tr in trs.items()}  # each segment's last attempt
    for _ in range(rounds):
        if not found:
            break
        where = sorted(found)
        items = [RepairTranslator.item(segmented[k].segments[i].source, "; ".join(n for _, n in found[(k, i)]),
                                       last[(k, i)]) for k, i in where]
        new = translate_texts(rep, items, src, tgt, cache=cache, progress=progress)
        kept = 0
        for (k, i), tr in zip(where, new, strict=True):
            last[(k, i)] = tr
            names, source = code_names(problems[k]), segmented[k].segments[i].source
            if len(segment_findings(source, tr, names, demos(source))) < len(
                    segment_findings(source, per_task[k][i], names, demos(source))):
                per_task[k][i] = tr
                kept += 1
        log.retranslated.append(len(where))
        log.improved.append(kept)
        found = findings(problems, segmented, per_task, demos)
        log.rounds.append(count(found))
    for k, sp in enumerate(segmented):
        for i, tr in per_task[k].items():
            edited, applied = post_edit(sp.segments[i].source, tr, demos(sp.segments[i].source))
            per_task[k][i] = edited
            for a in applied:
                log.post_edits[a] = log.post_edits.get(a, 0) + 1
    log.post_edited = count(findings(problems, segmented, per_task, demos))
    return per_task, log
