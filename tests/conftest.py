"""Shared test set-up: offline hub, isolated results store per test session."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests never write into the repository's results store (tests that need one shared store set their own).
os.environ.setdefault("CLTR_RESULTS_DIR", tempfile.mkdtemp(prefix="cltr-test-results-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
