"""The conformance adapters' plumbing: every URL on loopback, and the page written from a suite summary.

The clients themselves are the `conformance` extra (make conformance), absent from the project's venv:
the tests that need one are skipped where it is not installed.
"""

from __future__ import annotations

import pytest

from harness.ccxt_subject import loopback_urls, non_loopback
from harness.conformance import CLIENTS, client_section
from harness.subject import SubjectConfig

REST, WS = "http://127.0.0.1:4321", "ws://127.0.0.1:4321"
CONFIG = SubjectConfig("binance-spot", ("BTCUSDT",), WS, REST, 1)


def test_every_live_url_is_moved_to_the_venue_on_loopback() -> None:
    api = {
        "public": "https://api.binance.com/api/v3",
        "ws": {"spot": "wss://stream.binance.com:9443/ws", "future": "wss://fstream.binance.com/ws"},
        "futures": ["https://fapi.binance.com/fapi/v1"],
        "rateLimit": 50,
    }
    assert len(non_loopback(api)) == 4
    moved = loopback_urls(api, REST, WS)
    assert non_loopback(moved) == []
    assert moved["public"] == REST + "/api/v3" and moved["ws"]["spot"] == WS + "/ws"
    assert moved["futures"] == [REST + "/fapi/v1"] and moved["rateLimit"] == 50


def test_ccxt_can_reach_nothing_but_the_venue() -> None:
    pytest.importorskip("ccxt")
    from harness.ccxt_subject import exchange_for

    exchange = exchange_for(CONFIG, lambda message, book: None)
    assert non_loopback(exchange.urls["api"]) == []
    with pytest.raises(RuntimeError, match="beyond loopback"):
        exchange_for(SubjectConfig("binance-spot", ("BTCUSDT",), WS, "http://10.0.0.1:80", 1), lambda m, b: None)


def test_python_binance_is_pointed_at_the_venue() -> None:
    pytest.importorskip("binance")
    from binance.base_client import BaseClient
    from binance.ws.streams import BinanceSocketManager

    from harness.python_binance_subject import point_at_venue

    point_at_venue(CONFIG)
    assert BaseClient.API_URL == REST + "/api" and BinanceSocketManager.STREAM_URL == WS + "/"


def test_the_page_states_each_cell_with_its_command() -> None:
    cell = {
        "scenario": "gap_storm",
        "recording_name": "binance_spot_multi_synth",
        "status": "fail",
        "divergent": 3,
        "recovery_ms": {"count": 2, "unrecovered": 1, "p99": 1200.0, "max": 1500.0},
        "reproduce": "harness replay --scenario gap_storm --seed 1 --subject harness.ccxt_subject:create",
        "expectations": [
            {"name": "no silent divergence", "value": 3, "passed": False},
            {"name": "sync.divergent == 0", "value": 3, "passed": False},
            {"name": "sync.final_book_correct == true", "value": False, "passed": False},
        ],
    }
    lines = client_section(CLIENTS[0], "4.5.90", {"cells": [cell], "wall_s": 9.0}, ".venv-conformance/bin/harness")
    row = next(line for line in lines if line.startswith("| gap_storm"))
    assert "**FAIL**" in row and "**3**" in row and "**no**" in row and "**1 never recovered**" in row
    assert "`.venv-conformance/bin/harness replay --scenario gap_storm --seed 1 --subject" in row
    assert "- silent divergence (books handed out as current that differ from the oracle): gap_storm (3)" in lines
    missing = client_section(CLIENTS[1], None, None, "harness")
    assert any("Not installed here (`python-binance`)" in line for line in missing)
