"""The checker catches a subject that mishandles each fault kind, and passes ours on the same replay.

For every fault kind (and every REST snapshot mode) one short scenario with just that fault is run
twice on a 20 s synthetic recording: against a subject from tests/broken_subjects.py with one defect
that this fault exposes, and against our default subject. Some defects need no fault, only a market
that shows them (a price below a cent, a price crossing 100.00, a second symbol): those cases run
without faults on a two-symbol recording (SOLUSDT, SHIBUSDT), and their broken subject also runs on
the one-symbol recording, where it passes. Each test asserts the specific finding that
separates them (silent divergence, a wrong or unsynced final book, gaps not detected, a resync where
none was needed or none where one was), so the verdict is shown to come from the checker seeing the
defect, not from the scenario being hard.

Each venue's own rule has its case too: a Binance USD-M subject that never checks `pu`, and one
that applies spot's rule to USD-M's skipping ids, each on a 20 s synthetic USD-M recording.

The replays are paced (mostly waiting on the replay clock), so all of them start at once in a few
threads when the module's first test asks, each with its own event loop, venue and subject process;
selecting one test still runs them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.checker import NEVER_WRITTEN
from harness.replay import ReplayRequest, run_replay
from harness.subject import DEFAULT_SUBJECT
from harness.synth.run import write_synthetic_recording
from harness.venues.binance_usdm import DIALECT as BINANCE_USDM
from replayer.faults import FAULT_KINDS, FAULT_PARAMS

REPO = Path(__file__).resolve().parents[1]
BROKEN = "tests.broken_subjects:"
PARALLEL = 6
WIDE_SYMBOLS = "SOLUSDT,SHIBUSDT"
NARROW = "on the one-symbol recording"

Report = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Case:
    """One fault kind's scenario and the broken subject it must expose (`kind` None: no fault, the
    `wide` recording's markets expose it)."""

    kind: str | None
    broken: str
    speed: float
    faults: str
    expect: str = ""
    wide: bool = False
    narrow: bool = True
    """For a wide case: its broken subject is correct on the one-symbol recording (and is run there)."""
    stale_limit: float | None = None
    venue: str = "binance-spot"

    def toml(self, name: str) -> str:
        limit = "" if self.stale_limit is None else f"stale_limit = {self.stale_limit}\n"
        return (
            f'name = "{name}"\ndescription = "{self.kind} against {self.broken}"\nspeed = {self.speed}\nseed = 1\n'
            f"{limit}\n{self.faults.strip()}\n\n[expect]\n"
            '"sync.divergent" = 0\n"sync.final_book_correct" = true\n'
            + (f'"faults.{self.kind}" = ">= 1"\n' if self.kind else "")
            + FLAG_EXPECTATIONS
            + f"{self.expect.strip()}\n"
        )


FLAG_EXPECTATIONS = (
    "".join(
        f'"sync.{flag}" = 0\n' for flag in ("books_before_snapshot", "unrequested_output", "dark_books", "stale_synced")
    )
    + '"sync.episodes_verified" = "== sync.episodes"\n'
)
"""Every case's scenario asks what the library's do: our subject passes them all under every fault."""


def _fault(kind: str, start: str, stop: str, **params: Any) -> str:
    """One `[[faults]]` table; strings are quoted, numbers written as they are."""
    values = {"kind": kind, "start": start, "stop": stop, **params}
    lines = [f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}" for key, value in values.items()]
    return "[[faults]]\n" + "\n".join(lines) + "\n"


CASES: dict[str, Case] = {
    "drop": Case("drop", "gap_blind", 8, _fault("drop", "15%", "75%", probability=0.1)),
    "gap": Case("gap", "gap_blind", 8, _fault("gap", "15%", "75%", count=10, length=1)),
    "duplicate": Case(
        "duplicate",
        "applies_duplicates",
        8,
        _fault("duplicate", "15%", "75%", probability=0.3)
        + _fault("duplicate", "15%", "75%", probability=0.2, lag_frames=3),
        '"sync.duplicates_applied" = 0\n"sync.reorders_applied" = 0',
    ),
    "reorder": Case("reorder", "gap_blind", 8, _fault("reorder", "15%", "75%", window=3, probability=0.3)),
    # Delay keeps the order (later frames queue behind a delayed one, as on TCP) and loses nothing, so a
    # subject that ignores sequence numbers, or applies duplicates, sees the clean stream and passes: no
    # sequence defect can be caught with delay alone. What a delay does expose is a subject that takes
    # the silence for a dead connection: a 2 s (recorded) delay spike is 0.4 s of silence at speed 5,
    # which trips a 200 ms watchdog into a reconnect and a full resync that a correct subject never needs.
    "delay": Case(
        "delay", "trigger_happy_watchdog", 5, _fault("delay", "30%", "50%", base=2.0, jitter=0.5), '"sync.resyncs" = 0'
    ),
    # A burst loses nothing on the wire; a subject whose queue overflows loses updates itself. With our
    # sequencing it then sees gaps and resyncs (honest, so no divergence): the catch is gaps detected
    # where the venue sent none. (A gap-blind sync behind the same queue diverges too, but how much
    # depends on timing: the crossed-book check often resyncs it first, so that is not asserted.)
    "burst": Case(
        "burst", "sheds_bursts", 8, _fault("burst", "15%", "75%", count=6, hold=0.3), '"sync.gaps_detected" = 0'
    ),
    "corrupt": Case(
        "corrupt", "salvages_corrupt_frames", 8, _fault("corrupt", "15%", "75%", probability=0.1, mode="truncated")
    ),
    # 12 s at speed 6 is 2 s of half-open silence: past our 1.5 s watchdog, and the stall ends before
    # the keepalive pings (20 s) would notice, so only a watchdog turns it into a resync.
    "stall": Case("stall", "no_watchdog", 6, _fault("stall", "10%", "75%", duration=12.0), '"sync.resyncs" = ">= 1"'),
    "disconnect": Case(
        "disconnect", "resumes_after_reconnect", 8, _fault("disconnect", "15%", "75%", count=6, mode="mixed")
    ),
    "handshake_refused": Case(
        "handshake_refused", "gives_up_reconnecting", 8, _fault("handshake_refused", "30%", "50%", attempts=3)
    ),
    "snapshot_stale": Case(
        "snapshot",
        "trusts_any_snapshot",
        8,
        _fault("snapshot", "0%", "10%", mode="stale", lag_frames=20, trigger="none")
        + _fault("snapshot", "30%", "50%", mode="stale", lag_frames=20),
    ),
    # 40 frames ahead is half a second of wall time at speed 8: far more than a loaded machine takes to
    # answer the fetch, so the trusting subject has always buffered updates older than the snapshot.
    "snapshot_too_new": Case(
        "snapshot", "trusts_any_snapshot", 8, _fault("snapshot", "30%", "50%", mode="too_new", lag_frames=40)
    ),
    "snapshot_error": Case(
        "snapshot", "gives_up_on_snapshot", 8, _fault("snapshot", "30%", "50%", mode="error", status=503)
    ),
    # A slow snapshot's `delay` is recorded time, divided by speed: 4 s at speed 8 is 0.5 s, past the
    # broken subject's 0.25 s timeout.
    "snapshot_slow": Case(
        "snapshot", "gives_up_on_snapshot", 8, _fault("snapshot", "30%", "50%", mode="slow", delay=4.0)
    ),
    # Being too slow is the defect: the venue drops the reader (a fast one takes the burst). Whether the
    # stale book it keeps then diverges depends on timing (the crossed-book check may resync it first),
    # so the catch asserted is the drop the venue reports, and divergence only where it shows. The
    # broken reader stalls at the burst's release (8 s recorded in) for the rest of the limit's window
    # (2 s to 16 s recorded; 3 s of wall time at speed 4 covers it), so the venue sends it over 100 KiB
    # while the kernels hold about 40 KiB: dropped on any machine, however loaded.
    "slow_consumer": Case(
        "slow_consumer",
        "slow_reader_resumes",
        4,
        _fault("slow_consumer", "10%", "80%", max_bytes=4096, hold=6.0),
        '"venue.slow_consumers_dropped" = 0',
    ),
    "exchange_restart": Case("exchange_restart", "gives_up_reconnecting", 8, _fault("exchange_restart", "30%", "45%")),
    # Not a fault kind: a disconnect after which the subject's client gives up without telling anyone.
    "frozen": Case("disconnect", "gives_up_silently", 8, _fault("disconnect", "70%", "70%")),
    # Half-open for good: the connection never delivers again, so a subject without a watchdog waits
    # forever on a book that stays "synced" at the moment the silence began.
    # Its silence lasts from the stall to the end of the run (over 5 s: the runner waits for a catch-up that
    # never comes), past a 4 s limit that our 1.5 s watchdog clears with room to spare, even on a loaded machine.
    "stall_half_open": Case(
        "stall", "no_watchdog", 6, _fault("stall", "30%", "50%", mode="half_open"), stale_limit=4.0
    ),
    # REST still down 6 s (recorded; 1.5 s of wall time) after the WebSocket is back: the subject has
    # reconnected and fetches into the outage, and one that retries only on a new connection is stuck.
    # REST is back at 60% of the recording, so a subject backing off its retries (ours: up to 1 s)
    # still has stream left to sync on.
    "exchange_restart_rest_outage": Case(
        "exchange_restart", "fetches_once_per_connection", 4, _fault("exchange_restart", "20%", "30%", rest_outage=6.0)
    ),
    # Snapshots inside an event (issue 7, items 1 and 3; one block). Every snapshot straddles an event by default, so a
    # subject that drops the straddling update by its first id never bridges one and ends unsynced.
    "straddle_drop_by_first_id": Case("disconnect", "drops_by_first_id", 8, _fault("disconnect", "40%", "40%")),
    # A snapshot two updates older than the new connection's first frame, twice in a row: the joined book
    # stays uncrossed, so only the bridge rule rejects it; the first is joined by a subject without it...
    "bridge_unchecked": Case(
        "snapshot",
        "skips_bridge_check",
        8,
        _fault("snapshot", "30%", "50%", mode="barely_stale", lag_updates=2, requests=2),
    ),
    # ... and the second by one that refetches once and then trusts whatever comes.
    "snapshot_barely_stale": Case(
        "snapshot",
        "trusts_second_snapshot",
        8,
        _fault("snapshot", "30%", "50%", mode="barely_stale", lag_updates=2, requests=2),
    ),
    # Issue 7, items 5 and 7 (one block). Two one-update gaps: whether the lost update's change ever
    # reaches the top 20 is luck, so the catch asserted is the hole itself (sync.holes_bridged).
    "hole_one_update": Case(
        "gap", "gap_blind", 8, _fault("gap", "30%", "60%", count=2, length=1), '"sync.holes_bridged" = 0'
    ),
    # The same replay under Binance's default 6,000 weight a minute: a client polling 5,000-level
    # snapshots (250 each) is refused with 429 within a recorded minute, keeps going, and is banned.
    "rest_weight": Case(
        "gap",
        "polls_snapshots",
        8,
        _fault("gap", "30%", "60%", count=2, length=1),
        '"venue.rest_weight.refused_429" = 0\n"venue.rest_weight.refused_418" = 0',
    ),
    # No fault at all: markets whose prices and symbols the one-symbol recording never shows.
    "sub_cent_prices": Case(None, "cents_keyed_book", 8, "", wide=True),
    "price_crosses_100": Case(None, "text_sorted_book", 8, "", wide=True),
    "second_symbol": Case(None, "one_snapshot_for_all", 8, "", wide=True),
    # Issue 11, item 2: the flags. No fault needed; each defect shows on a clean replay.
    "before_snapshot": Case(None, "shows_book_before_snapshot", 8, ""),
    "lowercase_symbols": Case(None, "lowercase_symbols", 8, ""),
    "dark_book": Case(None, "forgets_last_symbol", 8, "", wide=True, narrow=False),
    # Binance USD-M's own rule: `pu` must equal the previous `u`, and `U` skips ids.
    "usdm_link": Case("gap", "ignores_pu", 8, _fault("gap", "15%", "75%", count=10, length=1), venue=BINANCE_USDM.name),
    # Spot's rule sees a gap at every USD-M event, so it is synced one event per snapshot: whether that
    # last moment happens to end the run in sync is timing, so the catch is the coverage it never keeps.
    "usdm_spot_rule": Case(None, "spot_rule_on_usdm", 8, "", '"sync.coverage" = ">= 0.9"', venue=BINANCE_USDM.name),
}


@dataclass(slots=True)
class Replays:
    """Every run, started at once; `pair(case)` waits for that case's two reports."""

    futures: dict[tuple[str, str], Future[Report]]
    cli: Future[subprocess.CompletedProcess[str]]
    cli_dir: Path
    """Where the CLI run wrote its report, page and reproduction."""
    repro: Future[Report]
    """The CLI run's reproduction file, replayed."""

    def pair(self, name: str) -> tuple[Report, Report]:
        """(the broken subject's report, our default subject's report)."""
        broken = self.futures[name, BROKEN + CASES[name].broken].result()
        return broken, self.futures[name, DEFAULT_SUBJECT].result()

    def narrow(self, name: str) -> Report:
        """A wide case's broken subject on the one-symbol recording."""
        return self.futures[name, NARROW].result()


def _cli(scenario: Path, recording: Path, subject: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["replay", "--scenario", str(scenario), "--recording", str(recording), "--subject", subject, *extra]
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replays]:
    root = tmp_path_factory.mktemp("catches")
    recording = write_synthetic_recording(root / "rec", seconds=20, seed=7)
    wide = write_synthetic_recording(root / "wide", WIDE_SYMBOLS, seconds=20, seed=7)
    usdm = write_synthetic_recording(root / "usdm", seconds=20, seed=7, venue=BINANCE_USDM.name)

    def recording_of(case: Case) -> Path:
        return wide if case.wide else usdm if case.venue == BINANCE_USDM.name else recording

    with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(PARALLEL) as pool:
        # The subject process imports tests.broken_subjects from the repository root, wherever pytest runs.
        mp.syspath_prepend(str(REPO))
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        futures: dict[tuple[str, str], Future[Report]] = {}
        for name, case in CASES.items():
            (root / f"{name}.toml").write_text(case.toml(name))
        # Broken subjects first: those that never catch up make the runner wait out its catch-up timeout.
        runs = [(name, BROKEN + case.broken, recording_of(case)) for name, case in CASES.items()]
        runs += [(name, DEFAULT_SUBJECT, recording_of(case)) for name, case in CASES.items()]
        runs += [(name, NARROW, recording) for name, case in CASES.items() if case.wide and case.narrow]
        for name, key, rec in runs:
            subject = BROKEN + CASES[name].broken if key == NARROW else key
            request = ReplayRequest(scenario=str(root / f"{name}.toml"), recording=rec, subject=subject)
            futures[name, key] = pool.submit(run_replay, request)
        cli_dir = root / "cli"
        cli_dir.mkdir()
        outputs = ("--report", str(cli_dir / "run.json"), "--html", str(cli_dir / "run.html"))
        cli = pool.submit(_cli, root / "gap.toml", recording, BROKEN + "gap_blind", *outputs)
        repro = pool.submit(_replay_after, cli, cli_dir / "run.repro.toml", recording, BROKEN + "gap_blind")
        yield Replays(futures, cli, cli_dir, repro)


def _replay_after(first: Future[Any], scenario: Path, recording: Path, subject: str) -> Report:
    first.result()
    return run_replay(ReplayRequest(scenario=str(scenario), recording=recording, subject=subject))


def _failed(report: Report) -> list[str]:
    return [row["name"] for row in report["expectations"] if not row["passed"]]


def _catches(broken: Report, good: Report, *failed: str) -> Report:
    """The broken run (which ran cleanly) fails at least the expectations named; ours passes them all."""
    assert good["passed"], [f"{row['name']}: {row['value']!r}" for row in good["expectations"] if not row["passed"]]
    assert broken["passed"] is False
    assert broken["subject"]["exit_code"] == 0, broken["subject"]
    assert set(failed) <= set(_failed(broken)), broken["expectations"]
    return broken["sync"]


DIVERGED = ("no silent divergence", "sync.divergent == 0")


def test_every_fault_kind_and_snapshot_mode_has_a_case() -> None:
    assert {case.kind for case in CASES.values() if case.kind} == set(FAULT_KINDS)
    modes = {name.removeprefix("snapshot_") for name in CASES if name.startswith("snapshot_")}
    assert modes == set(FAULT_PARAMS["snapshot"]["mode"].choices)
    stalls = [case.faults for case in CASES.values() if case.kind == "stall"]
    stall_modes = {"half_open" if 'mode = "half_open"' in faults else "late" for faults in stalls}
    assert stall_modes == set(FAULT_PARAMS["stall"]["mode"].choices)


def test_drop_applied_across_is_silent_divergence(replays: Replays) -> None:
    broken, good = replays.pair("drop")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0 and sync["divergence_examples"]
    assert sync["gaps_detected"] == 0 < sync["gaps_injected"]
    assert good["sync"]["gaps_detected"] > 0


def test_gap_ignored_is_silent_divergence_and_undetected(replays: Replays) -> None:
    broken, good = replays.pair("gap")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0
    assert sync["gaps_detected"] == 0 < sync["gaps_injected"]
    # Not `detected == injected` for ours: a resync's snapshot can already contain the next lost update.
    assert good["sync"]["gaps_detected"] > 0


def test_duplicates_applied_twice_are_counted_and_late_ones_diverge(replays: Replays) -> None:
    broken, good = replays.pair("duplicate")
    sync = _catches(broken, good, *DIVERGED, "sync.duplicates_applied == 0", "sync.reorders_applied == 0")
    assert sync["duplicates_applied"] > 0 and sync["reorders_applied"] > 0 and sync["divergent"] > 0
    assert good["sync"]["duplicates_applied"] == good["sync"]["reorders_applied"] == 0


def test_reordered_frames_applied_out_of_sequence_diverge(replays: Replays) -> None:
    broken, good = replays.pair("reorder")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0 and sync["gaps_detected"] == 0 < sync["gaps_injected"]


def test_delay_mistaken_for_a_dead_connection_costs_a_resync(replays: Replays) -> None:
    broken, good = replays.pair("delay")
    sync = _catches(broken, good, "sync.resyncs == 0")
    assert sync["resyncs"] >= 1 and sync["events"].get("connection_closed", 0) >= 1
    assert sync["divergent"] == 0
    assert good["sync"]["events"].get("connection_closed", 0) == 0


def test_burst_overflowing_a_small_queue_shows_gaps_never_on_the_wire(replays: Replays) -> None:
    broken, good = replays.pair("burst")
    sync = _catches(broken, good, "sync.gaps_detected == 0")
    assert sync["gaps_detected"] > sync["gaps_injected"] == 0 and sync["resyncs"] > 0
    assert sync["divergent"] == 0
    assert broken["queue"]["dropped"] > 0 and good["queue"]["dropped"] == 0


def test_truncated_frames_salvaged_and_applied_diverge(replays: Replays) -> None:
    broken, good = replays.pair("corrupt")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0 and sync["events"].get("decode_error", 0) == 0
    assert good["sync"]["events"]["decode_error"] > 0 and good["sync"]["gaps_detected"] > 0


def test_half_open_stall_unnoticed_without_a_watchdog(replays: Replays) -> None:
    broken, good = replays.pair("stall")
    sync = _catches(broken, good, "sync.resyncs >= 1")
    assert sync["resyncs"] == 0 and sync["events"].get("connection_closed", 0) == 0
    assert good["sync"]["resyncs"] >= 1


def test_book_kept_across_a_disconnect_diverges(replays: Replays) -> None:
    broken, good = replays.pair("disconnect")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0
    assert sync["events"]["connection_open"] > 1 and good["sync"]["events"]["connection_open"] > 1


def test_client_that_gives_up_on_refused_handshakes_ends_unsynced(replays: Replays) -> None:
    broken, good = replays.pair("handshake_refused")
    sync = _catches(broken, good, "sync.final_book_correct == true")
    assert [final["detail"] for final in sync["final"]] == ["not synced at the end"]
    assert sync["events"]["connection_open"] == 1 and good["sync"]["events"]["connection_open"] > 1


def test_stale_snapshot_joined_to_the_stream_diverges(replays: Replays) -> None:
    broken, good = replays.pair("snapshot_stale")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0 and sync["events"].get("stale_snapshot", 0) == 0
    assert good["sync"]["events"]["stale_snapshot"] >= 1


def test_too_new_snapshot_with_older_updates_replayed_diverges(replays: Replays) -> None:
    broken, good = replays.pair("snapshot_too_new")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0


@pytest.mark.parametrize("name", ["snapshot_error", "snapshot_slow"])
def test_subject_that_gives_up_on_a_failed_snapshot_ends_unsynced(replays: Replays, name: str) -> None:
    broken, good = replays.pair(name)
    sync = _catches(broken, good, "sync.final_book_correct == true")
    assert [final["detail"] for final in sync["final"]] == ["not synced at the end"]
    assert sync["events"]["snapshot_error"] == 1


def test_venue_restart_outlasting_the_retry_budget_ends_unsynced(replays: Replays) -> None:
    broken, good = replays.pair("exchange_restart")
    sync = _catches(broken, good, "sync.final_book_correct == true")
    assert [final["detail"] for final in sync["final"]] == ["not synced at the end"]
    assert good["sync"]["resyncs"] >= 1


def test_slow_reader_is_dropped_by_the_venue(replays: Replays) -> None:
    # The venue counts a client's backlog only while the kernel refuses bytes; run_replay pins the
    # venue's send buffer when a plan limits client buffers, so a reader that barely reads is dropped.
    broken, good = replays.pair("slow_consumer")
    _catches(broken, good, "venue.slow_consumers_dropped == 0")
    assert broken["venue"]["slow_consumers_dropped"] >= 1
    assert good["venue"]["slow_consumers_dropped"] == 0


def test_book_frozen_by_a_silent_give_up_is_not_a_correct_final_book(replays: Replays) -> None:
    broken, good = replays.pair("frozen")
    sync = _catches(broken, good, "sync.final_book_correct == true")
    assert sync["final"][0]["update_id"] < sync["final"][0]["oracle_last_update_id"]


def test_half_open_for_good_leaves_a_subject_without_a_watchdog_stale(replays: Replays) -> None:
    broken, good = replays.pair("stall_half_open")
    # Its coverage (books checked over time) depends on when the stall lands on a loaded machine; its final
    # book, stopped at the stall, does not.
    sync = _catches(broken, good, "sync.final_book_correct == true")
    assert sync["divergent"] == 0 and sync["events"].get("connection_closed", 0) == 0
    final = sync["final"][0]
    assert final["detail"].startswith("synced but stopped at") and final["update_id"] < final["oracle_last_update_id"]
    assert broken["venue"]["half_open_connections"] == 1 and broken["faults"]["stall"] == 1
    assert good["sync"]["resyncs"] >= 1 and good["venue"]["half_open_connections"] == 1


def test_half_open_for_good_leaves_a_book_synced_in_silence_past_the_stale_limit(replays: Replays) -> None:
    broken, good = replays.pair("stall_half_open")
    sync = _catches(broken, good, "sync.stale_synced == 0")
    assert sync["stale_synced"] == 1 and good["sync"]["stale_synced"] == 0
    (flag,) = [row for row in sync["flags"] if row["flag"] == "stale_synced"]
    assert "still claimed synced" in flag["detail"] and "limit 4 s" in flag["detail"]


def test_a_book_shown_before_its_first_snapshot_is_flagged_and_nothing_else(replays: Replays) -> None:
    broken, good = replays.pair("before_snapshot")
    sync = _catches(broken, good, "sync.books_before_snapshot == 0")
    assert sync["books_before_snapshot"] > 0 == good["sync"]["books_before_snapshot"]
    assert [row["name"] for row in broken["expectations"] if not row["passed"]] == ["sync.books_before_snapshot == 0"]


def test_books_reported_under_another_name_are_unrequested_output_and_leave_a_dark_book(replays: Replays) -> None:
    broken, good = replays.pair("lowercase_symbols")
    sync = _catches(broken, good, "sync.unrequested_output == 0", "sync.dark_books == 0")
    assert sync["unrequested_output"] > 0 and sync["dark_books"] == 1
    flags = {row["flag"]: row for row in sync["flags"]}
    assert flags["unrequested_output"]["symbol"] == "btcusdt" and flags["dark_books"]["symbol"] == "BTCUSDT"


def test_a_symbol_never_subscribed_is_a_dark_book(replays: Replays) -> None:
    broken, good = replays.pair("dark_book")
    sync = _catches(broken, good, "sync.dark_books == 0")
    assert sync["dark_books"] == 1 and sync["unrequested_output"] == 0 == good["sync"]["dark_books"]
    (flag,) = [row for row in sync["flags"] if row["flag"] == "dark_books"]
    assert flag["symbol"] == "SHIBUSDT" and flag["detail"].endswith(NEVER_WRITTEN)


def test_every_episode_of_our_subject_is_verified_under_every_fault(replays: Replays) -> None:
    for name in CASES:
        _, good = replays.pair(name)
        assert good["sync"]["episodes"] >= 1, name
        assert good["sync"]["episodes_verified"] == good["sync"]["episodes"], name


def test_rest_outlasting_the_websocket_strands_a_subject_that_retries_only_on_reconnect(replays: Replays) -> None:
    broken, good = replays.pair("exchange_restart_rest_outage")
    sync = _catches(broken, good, "sync.final_book_correct == true")
    assert [final["detail"] for final in sync["final"]] == ["not synced at the end"]
    assert sync["events"]["snapshot_error"] == 1 and broken["venue"]["rest_requests"].get("depth:503", 0) == 1
    # Served means both halves happened: a client closed by the restart, and a snapshot refused after
    # the WebSocket was back; ours met the outage too, and kept fetching until REST returned.
    assert broken["faults"]["exchange_restart"] == good["faults"]["exchange_restart"] == 1
    assert good["venue"]["rest_requests"]["depth:503"] >= 1 and good["sync"]["final_book_correct"] is True


def test_straddled_update_dropped_by_its_first_id_never_bridges(replays: Replays) -> None:
    broken, good = replays.pair("straddle_drop_by_first_id")
    sync = _catches(broken, good, "sync.final_book_correct == true")
    assert [final["detail"] for final in sync["final"]] == ["not synced at the end"]
    assert sync["events"]["stale_snapshot"] > 1 and sync["divergent"] == 0
    assert good["sync"]["events"].get("stale_snapshot", 0) == 0


@pytest.mark.parametrize("name", ["bridge_unchecked", "snapshot_barely_stale"])
def test_barely_stale_snapshot_joined_without_the_bridge_rule_diverges(replays: Replays, name: str) -> None:
    broken, good = replays.pair(name)
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0
    assert broken["venue"]["rest_faults"]["barely_stale"] >= 1
    # Ours rejects both barely stale answers by the bridge rule (no crossed book needed) and syncs on the third.
    assert good["sync"]["events"]["stale_snapshot"] >= 2
    assert good["venue"]["rest_faults"]["barely_stale"] == 2


def test_a_one_update_hole_applied_across_is_a_hole_bridged(replays: Replays) -> None:
    broken, good = replays.pair("hole_one_update")
    sync = _catches(broken, good, "sync.holes_bridged == 0", *DIVERGED)
    assert sync["holes_bridged"] > 0 and sync["gaps_detected"] == 0 < sync["gaps_injected"]
    assert any(
        example.get("hole", {}).get("why") == "never reached the subject intact"
        for example in sync["divergence_examples"]
    )
    assert good["sync"]["holes_bridged"] == 0 and good["sync"]["gaps_detected"] > 0


def test_snapshots_polled_past_the_weight_limit_are_refused_then_banned(replays: Replays) -> None:
    broken, good = replays.pair("rest_weight")
    _catches(broken, good, "venue.rest_weight.refused_418 == 0", "sync.final_book_correct == true")
    weight = broken["venue"]["rest_weight"]
    assert weight["limit"] == 6000 < weight["peak_per_minute"]
    assert weight["refused_429"] >= 1 and weight["refused_418"] >= 1 and weight["bans"] == 1
    assert [final["detail"] for final in broken["sync"]["final"]] == ["not synced at the end"]
    assert good["venue"]["rest_weight"]["refused_429"] == 0 == good["venue"]["rest_weight"]["refused_418"]


def test_cli_exits_one_on_a_caught_subject(replays: Replays) -> None:
    result = replays.cli.result()
    assert result.returncode == 1, result.stderr
    assert "FAIL" in result.stdout and "silent divergence" in result.stdout


def test_a_caught_run_explains_its_divergence_and_leaves_a_page_and_a_file_that_reproduces_it(
    replays: Replays,
) -> None:
    result = replays.cli.result()
    assert result.returncode == 1, result.stderr
    report = orjson.loads((replays.cli_dir / "run.json").read_bytes())
    repro_file = replays.cli_dir / "run.repro.toml"
    assert report["reproduce"]["scenario_file"] == str(repro_file) and report["reproduce"]["seed"] == 1
    assert f"reproduce with: {report['reproduce']['command']}" in result.stdout
    text = repro_file.read_text()
    assert text.startswith("# Reproduces a failed run of gap (seed 1)") and "\nseed = 1\n" in text
    example = report["sync"]["divergence_examples"][0]
    fates = [row["fate"] for row in example["context"]["frames"]]
    assert any(fate.startswith("dropped by gap") for fate in fates), fates
    assert example["context"]["faults"] and example["context"]["faults"][0]["kind"] == "gap"
    again = replays.repro.result()
    assert again["passed"] is False and again["sync"]["divergent"] > 0 and again["seed"] == 1
    assert again["faults"] == report["faults"]
    page = (replays.cli_dir / "run.html").read_text()
    assert page.count("<svg") == 3 and "First divergence" in page


def _final(report: Report, symbol: str) -> dict[str, Any]:
    (final,) = [row for row in report["sync"]["final"] if row["symbol"] == symbol]
    return final


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.wide and case.narrow])
def test_wide_case_defects_pass_on_one_symbol_quoted_in_cents(replays: Replays, name: str) -> None:
    """What the wide recording adds: on BTCUSDT alone each of these broken subjects is correct."""
    narrow = replays.narrow(name)
    assert narrow["passed"], [row for row in narrow["expectations"] if not row["passed"]]
    assert narrow["sync"]["divergent"] == 0 and narrow["sync"]["checks"] > 0


def test_book_keyed_by_cents_collapses_a_sub_cent_market_and_diverges(replays: Replays) -> None:
    broken, good = replays.pair("sub_cent_prices")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0
    assert {example["symbol"] for example in sync["divergence_examples"]} == {"SHIBUSDT"}
    assert _final(broken, "SOLUSDT")["correct"] and not _final(broken, "SHIBUSDT")["correct"]


def test_book_sorted_as_text_diverges_once_a_market_crosses_100(replays: Replays) -> None:
    # Sorted as text, "99.99000000" outranks "100.01000000": the best bid and ask it reports are wrong.
    broken, good = replays.pair("price_crosses_100")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0
    assert {example["symbol"] for example in sync["divergence_examples"]} == {"SOLUSDT"}
    assert _final(broken, "SHIBUSDT")["correct"] and not _final(broken, "SOLUSDT")["correct"]


def test_every_symbol_loaded_from_the_first_symbols_snapshot_never_syncs(replays: Replays) -> None:
    broken, good = replays.pair("second_symbol")
    _catches(broken, good, "sync.final_book_correct == true")
    assert _final(broken, "SHIBUSDT")["detail"] == "not synced at the end"
    assert all(final["correct"] for final in good["sync"]["final"]) and len(good["sync"]["final"]) == 2


def test_usdm_events_applied_without_their_pu_link_diverge_silently(replays: Replays) -> None:
    broken, good = replays.pair("usdm_link")
    sync = _catches(broken, good, *DIVERGED)
    assert sync["divergent"] > 0
    assert sync["gaps_detected"] == 0 < sync["gaps_injected"]
    assert good["sync"]["gaps_detected"] > 0


def test_spot_rule_on_usdm_ids_never_stays_synced(replays: Replays) -> None:
    broken, good = replays.pair("usdm_spot_rule")
    sync = _catches(broken, good, "sync.coverage >= 0.9")
    assert sync["divergent"] == 0, "it never claims a book it cannot place"
    assert good["sync"]["resyncs"] == 0
