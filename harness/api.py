"""The harness as a library: what the CLI does, for a script, a notebook, a CI step or a test.

One import for the supported names (docs/api.md); everything else in the package may move. A test
pins this list, so removing or renaming a name here is a visible, deliberate change. Every function
raises HarnessError for bad input (the CLI prints it as one line and exits 2) and ValueError or
TypeError for misuse by code.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.fake_venue import FakeVenue, fault_log
from harness.html_report import write_html_report
from harness.observations import BookObservation, FinalBook, SyncEvent
from harness.replay import BUNDLED_FIXTURE, ReplayRequest, run_replay
from harness.report import render_terminal, write_junit, write_report
from harness.scenario_toml import scenario_toml
from harness.scenarios import Scenario, list_scenarios, load_scenario, parse_scenario
from harness.search import SearchRequest, SearchResult, run_search
from harness.subject import DEFAULT_SUBJECT, SubjectConfig
from harness.suite import SuiteRequest, exit_code, merge_suites, plan_suite, run_suite
from harness.suite_matrix import SuiteCell, parse_seeds, parse_shard
from harness.suite_results import summary_table, write_suite_junit
from harness.synth.run import write_synthetic_recording
from harness.testing import TIMING_FREE_KINDS, DepthStream, depth_streams, fault_schedules, fault_specs

__all__ = [
    "BUNDLED_FIXTURE",
    "DEFAULT_SUBJECT",
    "TIMING_FREE_KINDS",
    "BookObservation",
    "DepthStream",
    "FakeVenue",
    "FinalBook",
    "HarnessError",
    "ReplayRequest",
    "Scenario",
    "SearchRequest",
    "SearchResult",
    "SubjectConfig",
    "SuiteCell",
    "SuiteRequest",
    "SyncEvent",
    "depth_streams",
    "exit_code",
    "fault_log",
    "fault_schedules",
    "fault_specs",
    "list_scenarios",
    "load_scenario",
    "merge_suites",
    "parse_scenario",
    "parse_seeds",
    "parse_shard",
    "plan_suite",
    "render_terminal",
    "run_replay",
    "run_search",
    "run_suite",
    "scenario_toml",
    "summary_table",
    "write_html_report",
    "write_junit",
    "write_report",
    "write_suite_junit",
    "write_synthetic_recording",
]
