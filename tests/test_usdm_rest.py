"""USD-M's REST depth answer as the fake venue writes it: `lastUpdateId`, `E`, `T`, `bids`, `asks`, in that
order, as the real `/fapi/v1/depth` (the recorded answer in the real slice has them), with its times read
from the recorded events it stands at and moved with the frames when the venue rebases time.

Clients read `T` as the book's timestamp (ccxt's binance `fetch_order_book`: `safeInteger(response, 'T')`
for `parseOrderBook`, `lastUpdateId` as the nonce), so it must be an integer of milliseconds on the clock
of the stream the client also reads.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import orjson
import pytest

from replayer.replay_data import ReplayData, load_replay_data, wire_of
from replayer.timeline import Send
from replayer.venue_actions import HttpAnswer, Write
from replayer.venue_core import VenueCore

REPO = Path(__file__).resolve().parents[1]
USDM_REAL = REPO / "fixtures" / "binance_usdm_btcusdt_real_30s"
NOW = 10**12
WALL = 1_800_000_000_000 * 10**6
DEPTH = "/fapi/v1/depth?symbol=BTCUSDT&limit=5"


@pytest.fixture(scope="module")
def data() -> ReplayData:
    return load_replay_data(USDM_REAL)


def _answer(core: VenueCore) -> dict:
    answer = core.http_request(DEPTH, False, "127.0.0.1", NOW, WALL)
    assert isinstance(answer, HttpAnswer) and answer.reply.status == 200
    return orjson.loads(answer.reply.body)


def _event_holding(data: ReplayData, update_id: int) -> dict:
    """The recorded depth event whose ids hold `update_id` (or the first after it), read independently."""
    events = [orjson.loads(data.frames[i].payload)["data"] for i in data.depth_indexes["BTCUSDT"]]
    return next(event for event in events if event["u"] >= update_id)


def test_the_depth_answer_carries_the_recorded_times_of_the_state_it_serves(data: ReplayData) -> None:
    core = VenueCore(data, wire_of(data), started_ns=NOW)
    core.start_clock(NOW, WALL)
    walked = list(islice(core.schedule, 40))  # a schedule is walked, not indexed
    for entry in walked:
        core.entry(entry, NOW)
    body = _answer(core)
    assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"], "the real answer's keys, in its order"
    state = _event_holding(data, body["lastUpdateId"])
    sends = [entry for entry in walked if isinstance(entry, Send)]
    sent = [orjson.loads(send.frame.payload)["data"] for send in sends if send.frame.last_update_id is not None]
    assert isinstance(body["T"], int) and body["T"] == state["T"]
    assert body["E"] == max(state["E"], sent[-1]["E"]) >= body["T"]


def test_rebased_answers_read_the_clock_of_the_rebased_stream(data: ReplayData) -> None:
    core = VenueCore(data, wire_of(data), started_ns=NOW, rebase_time=True)
    conn, _ = core.open("/ws/btcusdt@depth@0ms", ("127.0.0.1", 1), NOW, WALL)
    actions = []
    for entry in islice(core.schedule, 40):
        actions += core.entry(entry, NOW)
    (last_sent,) = [a for a in actions if isinstance(a, Write) and a.conn == conn][-1:]
    moved = orjson.loads(last_sent.payload)
    recorded = orjson.loads(last_sent.entry.frame.payload)["data"]  # type: ignore[union-attr]
    shift = moved["E"] - recorded["E"]
    assert shift > 10**9  # the stream now reads as the session's start, years after the recording
    body = _answer(core)
    state = _event_holding(data, body["lastUpdateId"])
    assert body["T"] == state["T"] + shift and body["E"] >= body["T"]

    assert core.clock_start_ns is not None  # the subscription started it; the shift is the stream's


def test_before_any_subscription_a_rebased_answer_reads_as_now(data: ReplayData) -> None:
    """No clock yet, so no frame has been moved: the answer reads as if the session started with it, within
    the recording's 30 s of the wall clock's now (a transaction time runs a few ms before its event's time,
    the anchor), never in 2024 beside a stream that will read as now."""
    core = VenueCore(data, wire_of(data), started_ns=NOW, rebase_time=True)
    body = _answer(core)
    assert -1_000 <= body["T"] - WALL // 1_000_000 <= 30_000 and body["E"] >= body["T"]


def test_a_scheduled_429_names_usdm_s_weight_limit(data: ReplayData) -> None:
    refused = orjson.loads(wire_of(data).error_reply(429).body)
    assert refused["code"] == -1003 and "current limit is 2400 request weight" in refused["msg"]
