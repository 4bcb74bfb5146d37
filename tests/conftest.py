"""Shared test set-up: offline hub, isolated results store per test session."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests never write into the repository's results store (tests that need one shared store set their own).
os.environ.setdefault("CLTR_RESULTS_DIR", tempfile.mkdtemp(prefix="cltr-test-results-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def standins_on():
    """The tiny stand-ins instead of hub models for one test module (``pytestmark = usefixtures(...)``)."""
    from cltrlib.standins import use_standins

    use_standins(True)
    yield
    use_standins(False)
