"""Samples files (openai/human-eval compatible): read and validate completely before anything runs.

A sample is ``{"task_id", "completion"}`` (appended to the problem's prompt) or
``{"task_id", "solution"}`` (a full program); any other fields are kept. Bad input fails
with the file and line named, so a typo costs seconds, not an evaluation run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path


class SampleError(ValueError):
    """A samples file is malformed; the message names the file and line."""


def _open_bytes(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_samples(path: str | Path) -> list[dict]:
    """Read and validate a samples JSONL(.gz) file completely before anything runs."""
    path = Path(path)
    if not path.is_file():
        raise SampleError(f"{path}: samples file does not exist")
    samples = []
    try:
        with _open_bytes(path) as fh:
            for lineno, raw in enumerate(fh, 1):
                samples.extend(_parse_line(path, lineno, raw))
    except (OSError, EOFError) as exc:  # e.g. a truncated .gz
        raise SampleError(f"{path}: cannot read ({exc})") from None
    if not samples:
        raise SampleError(f"{path}: no samples in the file")
    return samples


def _parse_line(path: Path, lineno: int, raw: bytes) -> list[dict]:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SampleError(f"{path}:{lineno}: not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                          "re-encode the file as UTF-8") from None
    line = line.rstrip("\r\n")
    if not line.strip():
        return []
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SampleError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(rec, dict):
        raise SampleError(f"{path}:{lineno}: each line must be a JSON object, got {type(rec).__name__}")
    if not isinstance(rec.get("task_id"), str | int) or isinstance(rec.get("task_id"), bool):
        raise SampleError(f"{path}:{lineno}: missing or non-string 'task_id'")
    has = [k for k in ("completion", "solution") if isinstance(rec.get(k), str)]
    if not has:
        bad = [k for k in ("completion", "solution") if k in rec]
        why = f"'{bad[0]}' is {type(rec[bad[0]]).__name__}, not a string" if bad else "neither 'completion' nor 'solution'"
        raise SampleError(f"{path}:{lineno}: sample for {rec['task_id']} has {why}")
    for key in ("_line", "_tid"):
        rec.pop(key, None)
    rec["_line"] = lineno
    return [rec]


def file_sha(path: Path) -> str:
    """SHA-256 of a file's bytes: a resumed evaluation must be of exactly the same samples."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
