"""bench/results.py: figures merge into bench/results.json, each kept until its bench runs again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import results


@pytest.fixture(autouse=True)
def _fresh_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "_pending", {})


def test_a_run_replaces_its_own_figures_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results.put("a_vs_b", ratio=2.0, meaning="higher is better", comparison="b", goal=">= 1x", met=True)
    results.put("c_vs_d", ratio=0.5, meaning="higher is better", comparison="d", raw={"n": 3})
    results.write(path)
    results._pending.clear()
    results.put("a_vs_b", ratio=3.0, meaning="higher is better", comparison="b")
    results.write(path)

    document = json.loads(path.read_text())
    figures = document["figures"]
    assert list(figures) == ["a_vs_b", "c_vs_d"]
    assert figures["a_vs_b"]["ratio"] == 3.0 and figures["a_vs_b"]["goal"] is None
    assert figures["c_vs_d"] == figures["c_vs_d"] | {"ratio": 0.5, "raw": {"n": 3}, "comparison": "d"}
    machine = document["machine"]
    assert machine["cpus"] >= 1 and machine["python"].count(".") == 2 and "pyarrow" in machine["packages"]


def test_an_unreadable_previous_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("{not json")
    results.put("x_vs_y", ratio=1.0, meaning="m", comparison="y")
    results.write(path)
    assert list(json.loads(path.read_text())["figures"]) == ["x_vs_y"]
