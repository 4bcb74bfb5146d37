"""Process-table helpers shared by the tests that check nothing outlives a killed evaluator or sandbox."""

from __future__ import annotations

import os


def procs_with(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (read from /proc; vanished processes are skipped)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(name))
            except OSError:
                pass
    return found
