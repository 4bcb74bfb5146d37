"""On-disk translation cache: one SQLite file, so a rebuild with the same backend costs nothing.

Keyed by (backend identity, source language, target language, source text). A row is
written only after a whole batch came back well-formed and is committed at once, so a
failed or malformed response never leaves half a batch or removes what was cached.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from cltrlib import config


def default_cache_path() -> Path:
    return config.cache_dir() / "translations.sqlite"


class TranslationCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, backend TEXT, src TEXT, "
                       "tgt TEXT, source TEXT, translation TEXT)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    @staticmethod
    def key(backend: str, src: str, tgt: str, text: str) -> str:
        return hashlib.sha256("\x1f".join((backend, src, tgt, text)).encode("utf-8")).hexdigest()

    def get_many(self, backend: str, src: str, tgt: str, texts: Sequence[str]) -> dict[str, str]:
        """Cached translations of ``texts`` (source text → translation), misses left out."""
        keys = {self.key(backend, src, tgt, t): t for t in texts}
        found: dict[str, str] = {}
        with self._lock, self._connect() as db:
            items = list(keys)
            for start in range(0, len(items), 500):
                chunk = items[start:start + 500]
                q = f"SELECT key, translation FROM translations WHERE key IN ({','.join('?' * len(chunk))})"
                for k, tr in db.execute(q, chunk):
                    found[keys[k]] = tr
        return found

    def put_many(self, backend: str, src: str, tgt: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Store (source, translation) pairs in one transaction."""
        rows = [(self.key(backend, src, tgt, s), backend, src, tgt, s, t) for s, t in pairs]
        with self._lock, self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?, ?)", rows)

    def count(self, backend: str | None = None) -> int:
        with self._connect() as db:
            if backend is None:
                return db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]
            return db.execute("SELECT COUNT(*) FROM translations WHERE backend = ?", (backend,)).fetchone()[0]
