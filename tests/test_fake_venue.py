"""FakeVenue's fault log: every fault the plan injected shows in it, at the frames and times it acts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.fake_venue import FakeVenue

MIXED = """
name = "mixed"
description = "several fault kinds that fit a 10 s recording"
speed = 8
seed = 1

[[faults]]
kind = "drop"
start = "10%"
stop = "40%"
probability = 0.1

[[faults]]
kind = "gap"
start = "40%"
stop = "70%"
count = 2
length = 2

[[faults]]
kind = "duplicate"
start = "10%"
stop = "70%"
probability = 0.2

[[faults]]
kind = "corrupt"
start = "10%"
stop = "70%"
probability = 0.1
mode = "truncated"

[[faults]]
kind = "disconnect"
start = "50%"
stop = "60%"
count = 1
mode = "close"

[[faults]]
kind = "stall"
start = "20%"
stop = "40%"
duration = 1.0

[[faults]]
kind = "snapshot"
start = "60%"
stop = "70%"
mode = "error"
status = 503

[expect]
"sync.divergent" = 0
"""


def test_the_log_names_every_injected_kind_and_each_lost_frame(short_recording: Path, tmp_path: Path) -> None:
    (tmp_path / "mixed.toml").write_text(MIXED)
    venue = FakeVenue(tmp_path / "mixed.toml", recording=short_recording, seed=2)
    log = venue.fault_log()
    injected = {kind for kind, count in venue.injected.items() if count}
    assert injected and {row["fault"] for row in log} == injected
    assert [row["offset_ms"] for row in log] == sorted(row["offset_ms"] for row in log)
    sent = {entry.frame.index for entry in venue.plan.entries if hasattr(entry, "frame")}
    drops = {row["frame"] for row in log if row["action"] == "drop"}
    assert drops == {frame.index for frame in venue.data.frames} - sent
    for row in log:
        assert row["fault_id"] is not None and row["fault_id"].startswith(row["fault"]), row


def test_a_venue_not_started_has_no_urls_and_a_bad_scenario_is_bad_input(short_recording: Path) -> None:
    venue = FakeVenue("clean", recording=short_recording)
    with pytest.raises(RuntimeError, match="not running"):
        _ = venue.ws_url
    with pytest.raises(HarnessError, match="unknown scenario"):
        FakeVenue("no_such", recording=short_recording)
