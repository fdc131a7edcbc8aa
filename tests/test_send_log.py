"""The venue's send log kept packed on disk gives back exactly the records that went in, in order."""

from __future__ import annotations

import pytest

import replayer.venue_records as venue_records
from replayer.venue_records import SendLog, SendRecord


def _records(n: int) -> list[SendRecord]:
    streams = ("btcusdt@depth@100ms", "btcusdt@trade", "ethusdt@depth@100ms")
    faults = (None, None, None, "corrupt", "duplicate")
    return [
        SendRecord(i, streams[i % 3], None if i % 3 == 1 else 10**12 + i, 5 * i, 5 * i + 2, faults[i % 5])
        for i in range(n)
    ]


def test_sends_come_back_in_order_from_the_file_and_the_open_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(venue_records, "SEND_BLOCK_BYTES", 100)  # not a whole number of 36-byte sends
    records = _records(106)
    log = SendLog()
    for record in records:
        log.append(record)
    assert log._file is not None and log._pending, "the test must cross blocks on disk and end in an open one"
    assert len(log) == 106
    assert list(log) == records and log == records
    assert list(log) == records, "reading twice gives the same"
    assert log != records[:-1] and SendLog(records) == log
    log.close()
    assert log == [] and len(log) == 0 and log._file is None
