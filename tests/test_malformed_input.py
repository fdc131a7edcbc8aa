"""Malformed input, generated: every parser and the book sync either accept a value or refuse it with
their own error, never another exception, and a synced book never holds what a venue could not send.

These are the property-test half of the project's rule that bad input gets a clear error, not a
traceback and not a silently wrong answer.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.book_events import DecodeError, DepthDelta, DepthSnapshot, TopOfBook, Trade
from harness.errors import HarnessError
from harness.replay import BUNDLED_FIXTURE
from harness.sync import BookSync, SyncState
from harness.venues.binance_spot import rest
from harness.venues.binance_spot.decoder import decode_frame, decode_snapshot
from harness.venues.binance_spot.sequencing import BinanceSpotSequencing
from harness.venues.binance_spot.streams import ControlError, parse_control
from recorder.import_hftbacktest import import_hftbacktest
from replayer.reader import Recording

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
PRICE = st.sampled_from(["100.00", "100.01", "99.99", "100.10", "99.50", "nan", "inf", "-inf", "1e999"])
SIZE = st.sampled_from(["0.00000000", "1.5", "0.25", "2"])
GOOD_LEVEL = st.tuples(PRICE, SIZE).map(list)
# A level as a corrupting venue or network could deliver it: right, wrong in one field, or anything.
LEVEL = GOOD_LEVEL | st.tuples(JSON, SIZE).map(list) | st.tuples(PRICE, JSON).map(list) | JSON
# The stdlib encoder, not orjson's: it writes integers past 64 bits, which a wire can carry.
ENCODED = JSON.map(lambda value: json.dumps(value).encode())
DEPTH_FIELDS = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 5, "u": 6, "b": [["100.00", "1"]], "a": []}
DEPTH_FRAME = orjson.dumps({"stream": "btcusdt@depth@100ms", "data": DEPTH_FIELDS})


@given(payload=st.binary(max_size=64) | ENCODED)
def test_decode_frame_returns_an_event_or_raises_decode_error(payload: bytes) -> None:
    try:
        event = decode_frame(payload)
    except DecodeError as error:
        assert str(error)
        return
    assert event is None or isinstance(event, DepthDelta | TopOfBook | Trade)


@given(field=st.sampled_from(sorted(DEPTH_FIELDS)), value=JSON, combined=st.booleans())
def test_a_depth_frame_with_one_field_of_any_value_decodes_or_is_refused(
    field: str, value: object, combined: bool
) -> None:
    data = {**DEPTH_FIELDS, field: value}
    frame = {"stream": "btcusdt@depth@100ms", "data": data} if combined else data
    try:
        decoded = decode_frame(json.dumps(frame).encode())
    except DecodeError:
        return
    if isinstance(decoded, DepthDelta):
        assert type(decoded.first_update_id) is int and type(decoded.last_update_id) is int
        assert decoded.first_update_id <= decoded.last_update_id


@given(body=st.binary(max_size=64) | ENCODED)
def test_decode_snapshot_returns_a_snapshot_or_raises_decode_error(body: bytes) -> None:
    try:
        snapshot = decode_snapshot(body, "BTCUSDT")
    except DecodeError as error:
        assert str(error)
        return
    assert type(snapshot.last_update_id) is int
    assert type(snapshot.bids) is list and type(snapshot.asks) is list


@given(message=st.binary(max_size=64) | ENCODED | st.text(max_size=32))
def test_parse_control_returns_a_request_or_raises_control_error(message: bytes | str) -> None:
    try:
        parse_control(message)
    except ControlError as error:
        assert orjson.loads(error.reply())["error"]["code"] in (0, 1, 2, 3)


def _sane(book_levels: list[tuple[str, str]]) -> bool:
    return all(type(p) is str and type(s) is str and math.isfinite(float(p)) for p, s in book_levels)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(updates=st.lists(st.tuples(st.lists(LEVEL, max_size=3), st.lists(LEVEL, max_size=3)), min_size=1, max_size=8))
def test_the_sync_never_reports_synced_on_a_book_holding_levels_a_venue_could_not_send(
    updates: list[tuple[list, list]],
) -> None:
    sync = BookSync(BinanceSpotSequencing())
    sync.on_delta(DepthDelta("BTCUSDT", 11, 12, [["99.00", "1"]], [["101.00", "1"]]))
    sync.on_snapshot(DepthSnapshot("BTCUSDT", 11, [["99.50", "1"]], [["100.50", "1"]]))
    assert sync.state is SyncState.SYNCED
    for offset, (bids, asks) in enumerate(updates):
        update_id = 13 + offset
        sync.on_delta(DepthDelta("BTCUSDT", update_id, update_id, bids, asks))
        if sync.state is SyncState.SYNCED:
            assert _sane(sync.book.bids()) and _sane(sync.book.asks())


@pytest.fixture(scope="module")
def fixture_segment() -> bytes:
    (segment,) = sorted(BUNDLED_FIXTURE.glob("*.parquet"))
    return segment.read_bytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=4))
def test_a_damaged_segment_reads_back_or_is_one_harness_error(
    fixture_segment: bytes, tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[float, int]]
) -> None:
    damaged = bytearray(fixture_segment)
    for where, mask in flips:
        damaged[int(where * len(damaged))] ^= mask
    assume(bytes(damaged) != fixture_segment)
    folder = tmp_path_factory.mktemp("damaged")
    (folder / "segment-000000.parquet").write_bytes(bytes(damaged))
    try:
        events = list(Recording(folder).iter_events())
    except HarnessError as error:
        assert "\n" not in str(error)
        return
    assert [e.seq for e in events] == list(range(len(events)))


def test_a_column_name_that_is_not_utf8_in_the_footer_is_one_harness_error(
    fixture_segment: bytes, tmp_path: Path
) -> None:
    """pyarrow raises UnicodeDecodeError, not an ArrowException, for such a name (found by the test above)."""
    footer_at = len(fixture_segment) - 8 - int.from_bytes(fixture_segment[-8:-4], "little")
    damaged = bytearray(fixture_segment)
    damaged[fixture_segment.index(b"conn_id", footer_at)] = 0xFF  # the schema's name, before the row groups'
    (tmp_path / "segment-000000.parquet").write_bytes(bytes(damaged))
    with pytest.raises(HarnessError, match=r"segment-000000\.parquet: not a readable segment"):
        list(Recording(tmp_path).iter_events())


def test_the_damaged_segment_test_starts_from_a_readable_fixture(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED_FIXTURE, tmp_path / "copy")
    assert len(list(Recording(tmp_path / "copy").iter_events())) > 2000


@given(price=st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e999"]), bid=st.booleans())
def test_a_snapshot_with_a_price_that_is_not_finite_is_never_synced(price: str, bid: bool) -> None:
    sync = BookSync(BinanceSpotSequencing())
    sync.on_delta(DepthDelta("BTCUSDT", 11, 12, [], []))
    levels = [[price, "1"]]
    sync.on_snapshot(DepthSnapshot("BTCUSDT", 11, levels if bid else [], [] if bid else levels))
    assert sync.state is not SyncState.SYNCED and not sync.synced


QUERY = st.dictionaries(
    st.sampled_from(["symbol", "symbols", "limit", "permissions", "showPermissionSets", "symbolStatus", "x"]),
    st.lists(st.text(max_size=12), min_size=1, max_size=2),
    max_size=4,
)


@given(query=QUERY, route=st.sampled_from([rest.DEPTH_PATH, rest.EXCHANGE_INFO_PATH, rest.BOOK_TICKER_PATH]))
def test_rest_queries_are_answered_or_refused_with_a_binance_error(query: dict[str, list[str]], route: str) -> None:
    assert rest.request_weight(route, query) >= 1
    parse = {
        rest.DEPTH_PATH: rest.depth_params,
        rest.EXCHANGE_INFO_PATH: rest.exchange_info_params,
        rest.BOOK_TICKER_PATH: rest.book_ticker_params,
    }[route]
    try:
        parse(query)
    except rest.RestError as error:
        body = orjson.loads(error.body())
        assert 400 <= error.status < 600 and type(body["code"]) is int and body["msg"]


@given(line=st.binary(max_size=40) | ENCODED.map(lambda payload: b"1723161253937085768 " + payload))
def test_an_import_line_is_a_frame_a_snapshot_or_one_harness_error(line: bytes, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("import")
    source = folder / "cap.gz"
    with gzip.open(source, "wb") as out:
        out.write(b"1723161253937085768 " + DEPTH_FRAME + b"\n" + line + b"\n")
    try:
        summary = import_hftbacktest(source, folder / "rec")
    except HarnessError as error:
        assert "\n" not in str(error)
        assert not (folder / "rec").exists()
        return
    assert summary.frames + summary.snapshots >= 1
    assert [e.payload for e in Recording(folder / "rec").iter_events()][1] == DEPTH_FRAME
