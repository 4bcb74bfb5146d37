"""The results store: one folder per run, keyed by a hash of the run's configuration.

Layout: ``<results>/<stage>/<label>-<hash12>/`` with
  ``config.json``    the full configuration (what the hash covers)
  ``records.jsonl``  append-only results, flushed and fsynced per batch
  ``summary.json``   written last; its presence marks the run complete

Rerunning with the same configuration reads the records (seconds); with a new one
computes only that run; an interrupted run resumes from the records it already has
(a torn last line from a crash is dropped, never mis-parsed).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from cltrlib import __version__, config


def config_hash(cfg: dict) -> str:
    """Stable hash of a JSON-able configuration (keys sorted)."""
    blob = json.dumps(cfg, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def read_complete_lines(path: Path) -> list:
    """The JSON value of every complete line of an append-only JSONL log; [] if there is no file.

    A process killed mid-write leaves a torn last line: reading stops at the first line
    without its newline or that does not parse, and the file is cut back to the lines
    before it, so the next append starts on a clean line instead of gluing onto garbage.
    """
    if not path.exists():
        return []
    raw = path.read_bytes()
    out, good_len = [], 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
        good_len += len(line)
    if good_len != len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(good_len)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60].strip("_") or "run"


class RunStore:
    """Records of one run. Create with the stage name, a short label and the configuration."""

    def __init__(self, stage: str, cfg: dict, label: str = "", root: Path | None = None):
        self.config = {**cfg, "cltrlib_version": __version__}
        self.key = config_hash(self.config)
        root = Path(root) if root is not None else config.results_dir()
        self.path = root / stage / f"{_slug(label)}-{self.key[:12]}"
        self.path.mkdir(parents=True, exist_ok=True)
        cfg_file = self.path / "config.json"
        if not cfg_file.exists():
            # A temporary name of this process's own: the ranks of a multi-process launch open the same store at once,
            # and a shared name let one rank's rename remove the file under another's (FileNotFoundError).
            tmp = cfg_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.config, indent=1, sort_keys=True, ensure_ascii=False, default=str))
            os.replace(tmp, cfg_file)

    @property
    def records_file(self) -> Path:
        return self.path / "records.jsonl"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    def records(self) -> list[dict]:
        """All complete records; a torn final line (crash mid-write) is removed from the file."""
        return read_complete_lines(self.records_file)

    def append(self, records: Iterable[dict]) -> None:
        """Append records durably (flush + fsync) so an interrupted run loses nothing it finished. The write holds
        an exclusive lock on the file: the processes of a data-parallel run (``cltrlib.codegen.parallel``) append
        to one run, and a batch larger than one buffer would otherwise interleave with another's."""
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if not lines:
            return
        with open(self.records_file, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.write(lines)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock on this run, so two processes never compute the same run at once.

        A second process asking for a run that is being computed waits, then reads the
        stored records instead of duplicating them.
        """
        with open(self.path / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"[cltr] waiting for another process computing {self.path.name} ...", flush=True)
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def is_complete(self) -> bool:
        return self.summary_file.exists()

    def summary(self) -> dict | None:
        return json.loads(self.summary_file.read_text()) if self.is_complete() else None

    def mark_complete(self, summary: dict) -> None:
        tmp = self.summary_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=1, ensure_ascii=False, default=str))
        os.replace(tmp, self.summary_file)


def find_runs(stage: str, root: Path | None = None) -> list[RunStore]:
    """Every completed run of a stage (for tables that aggregate across runs)."""
    root = Path(root) if root is not None else config.results_dir()
    runs = []
    for cfg_file in sorted((root / stage).glob("*/config.json")):
        if (cfg_file.parent / "summary.json").exists():
            cfg = json.loads(cfg_file.read_text())
            cfg.pop("cltrlib_version", None)
            store = RunStore.__new__(RunStore)
            store.config, store.path = json.loads(cfg_file.read_text()), cfg_file.parent
            store.key = cfg_file.parent.name.rsplit("-", 1)[-1]
            runs.append(store)
    return runs
