"""Builders shared by test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.synth.run import write_synthetic_recording

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def short_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10 s synthetic BTCUSDT recording: a replay of it takes about a second at a library speed."""
    return write_synthetic_recording(tmp_path_factory.mktemp("short") / "short10", seconds=10, seed=1)


@pytest.fixture
def repo_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets subject processes (and this one) import tests.broken_subjects from the repository root."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
