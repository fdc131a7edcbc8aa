"""`harness replay` on each venue other than the default fixture's: a real capture through `clean`, and
(marked slow) the whole scenario library on a synthetic recording of the venue.

USD-M's own rule is what these prove end to end: its recordings load through its dialect, the fake
venue speaks its wire (`/fapi/v1/depth`, `@depth@0ms`), our subject syncs by `pu`, and the oracle,
with its own copy of the rule, agrees. The planted-bug cases for the rule are in test_replay_catches.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from harness.errors import HarnessError
from harness.replay import ReplayRequest, oracle_for, run_replay
from harness.synth.run import write_synthetic_recording
from harness.venues.registry import DIALECTS
from recorder.import_cryptofeed_v1 import import_cryptofeed_v1
from recorder.import_hftbacktest import import_hftbacktest
from replayer.reader import Recording
from replayer.replay_data import build_replay_data, load_replay_data
from tests.library_runs import failures, replay_library
from tests.okx_helpers import REAL_OKX

REPO = Path(__file__).resolve().parents[1]
USDM_REAL = REPO / "fixtures" / "binance_usdm_btcusdt_real_30s"
USDM_CAPTURE = REPO.parent / "shared" / "data" / "real" / "binance_usdm_btcusdt_20240808.hftbacktest.gz"
OKX_REAL = REPO / "fixtures" / "okx_books_real_2022_4s"
SYNTH_SYMBOL = {"okx": "BTC-USDT"}
"""How a venue spells the synth's BTC market, where not as Binance does."""


def test_the_usdm_real_slice_replays_clean_with_its_final_book_by_the_venue_s_rule() -> None:
    # At the scenario's speed, not 0: at speed 0 the venue pushes the 1,728 frames as fast as the subject
    # reads them, often before its REST snapshot comes back, and coverage is then a race.
    report = run_replay(ReplayRequest(scenario="clean", recording=USDM_REAL))
    assert report["passed"], failures(report)
    sync = report["sync"]
    assert sync["divergent"] == 0 and sync["recording_gaps"] == 0 and sync["holes_bridged"] == 0
    assert sync["checks"] > 500 and sync["resyncs"] == 0
    (final,) = sync["final"]
    assert final["symbol"] == "BTCUSDT" and final["correct"] is True
    assert report["venue"]["rest_requests"] == {"depth:200": 1}
    assert report["venue"]["rest_weight"]["limit"] == 2400, "USD-M's own weight limit, not spot's 6,000"
    assert report["faults_not_applicable"] == {}


@pytest.mark.slow
def test_every_library_scenario_passes_on_a_usdm_synth_recording(tmp_path: Path) -> None:
    recording = write_synthetic_recording(tmp_path / "usdm", "BTCUSDT,ETHUSDT", 60, seed=3, venue="binance-usdm")
    reports = replay_library(recording)
    failed = {name: failures(report) for name, report in reports.items() if not report["passed"]}
    assert not failed
    assert all(report["sync"]["final_book_correct"] for report in reports.values())


@pytest.mark.slow
@pytest.mark.skipif(not USDM_CAPTURE.exists(), reason="real capture not available")
def test_the_whole_usdm_capture_imports_and_replays_clean(tmp_path: Path) -> None:
    import_hftbacktest(USDM_CAPTURE, tmp_path / "usdm")
    report = run_replay(ReplayRequest(scenario="clean", recording=tmp_path / "usdm", speed=0))
    assert report["passed"], failures(report)
    assert report["sync"]["divergent"] == 0 and report["sync"]["recording_gaps"] == 0
    assert report["sync"]["checks"] > 6000 and all(final["correct"] for final in report["sync"]["final"])


def _okx_2022_passes(report: dict) -> None:
    """OKX's 2022 frames carry no `seqId`: each update follows its predecessor and only its checksum
    vouches for it, on the venue's side and the oracle's; the subject must end on the oracle's books."""
    assert report["passed"], failures(report)
    sync = report["sync"]
    assert sync["divergent"] == 0 and sync["recording_gaps"] == 0 and sync["resyncs"] == 0
    assert {final["symbol"] for final in sync["final"]} == {"BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"}
    assert all(final["correct"] for final in sync["final"])


def test_the_okx_2022_real_slice_replays_clean_placed_by_its_checksums() -> None:
    report = run_replay(ReplayRequest(scenario="clean", recording=OKX_REAL, speed=0))
    _okx_2022_passes(report)
    assert report["sync"]["checks"] > 70
    assert report["venue"]["rest_weight"]["limit"] == 0, "OKX's REST weighs nothing here, as its wire says"


@pytest.mark.skipif(not REAL_OKX.exists(), reason="real capture not available")
def test_the_whole_okx_2022_capture_imports_and_replays_clean(tmp_path: Path) -> None:
    import_cryptofeed_v1(REAL_OKX, tmp_path / "okx")
    report = run_replay(ReplayRequest(scenario="clean", recording=tmp_path / "okx", speed=0))
    _okx_2022_passes(report)
    assert report["sync"]["checks"] > 250


def _wrong_checksum(payload: bytes) -> bytes:
    checksum = orjson.loads(payload)["data"][0]["checksum"]
    wrong = payload.replace(b'"checksum":%d' % checksum, b'"checksum":%d' % (checksum + 1))
    assert wrong != payload
    return wrong


def test_an_unlinked_okx_update_whose_checksum_does_not_match_is_a_finding_not_a_book() -> None:
    data = load_replay_data(OKX_REAL)
    update = next(f for f in data.frames if f.chain is not None and not f.chain.snapshot and f.symbol == "BTC-USDT")
    # The oracle's copy: the book is unknown from the mismatch on, counted as a break in the recording.
    frames = [replace(f, payload=_wrong_checksum(f.payload)) if f is update else f for f in data.frames]
    assert oracle_for(data).recording_gaps == 0
    tampered = oracle_for(replace(data, frames=frames))
    assert tampered.recording_gaps == 1 and "BTC-USDT" not in tampered.symbols
    # The venue's side: such a recording is refused at load, in one line.
    events = [
        replace(e, payload=_wrong_checksum(e.payload)) if e.payload == update.payload else e
        for e in Recording(OKX_REAL).iter_events()
    ]
    with pytest.raises(HarnessError, match="does not match the checksum"):
        build_replay_data(events, ("BTC-USDT",), source="tampered", dialect=data.dialect)


@pytest.mark.parametrize("venue", sorted(DIALECTS))
def test_every_venue_s_synth_recording_replays_clean_with_our_subject(tmp_path: Path, venue: str) -> None:
    # Every venue end to end in make test: its synth, its wire (subscribe by URL or by message, REST or
    # in-stream snapshots), our subject with its rule, and the oracle's own copy of it.
    recording = write_synthetic_recording(tmp_path / "rec", SYNTH_SYMBOL.get(venue, "BTCUSDT"), 10, seed=2, venue=venue)
    report = run_replay(ReplayRequest(scenario="clean", recording=recording))
    assert report["passed"], failures(report)
    assert report["sync"]["checks"] > 0 and report["sync"]["final_book_correct"] is True
