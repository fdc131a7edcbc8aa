"""The public API is a list someone decided on: pinned here, and every name of it documented in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

import harness.api

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api.md"

PUBLIC = {
    "DepthStream",
    "SearchRequest",
    "SearchResult",
    "TIMING_FREE_KINDS",
    "depth_streams",
    "fault_schedules",
    "fault_specs",
    "run_search",
    "scenario_toml",
    "BUNDLED_FIXTURE",
    "DEFAULT_SUBJECT",
    "BookObservation",
    "FakeVenue",
    "FinalBook",
    "HarnessError",
    "ReplayRequest",
    "Scenario",
    "SubjectConfig",
    "SuiteCell",
    "SuiteRequest",
    "SyncEvent",
    "exit_code",
    "fault_log",
    "list_scenarios",
    "load_scenario",
    "merge_suites",
    "parse_scenario",
    "parse_seeds",
    "parse_shard",
    "plan_suite",
    "render_terminal",
    "run_replay",
    "run_suite",
    "summary_table",
    "write_html_report",
    "write_junit",
    "write_report",
    "write_suite_junit",
    "write_synthetic_recording",
}


def test_the_exported_names_are_the_pinned_list_and_all_exist() -> None:
    assert set(harness.api.__all__) == PUBLIC
    missing = [name for name in PUBLIC if not hasattr(harness.api, name)]
    assert missing == []


def test_every_exported_name_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    undocumented = [name for name in sorted(PUBLIC) if not re.search(rf"`{name}\b", text)]
    assert undocumented == []
