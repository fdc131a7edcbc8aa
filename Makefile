# Every target sets up .venv itself when it is missing, so a fresh clone needs only `make <target>`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-full replay suite lint bench bench-memory soak bench-load bench-abuse fixture fixture-real clean conformance

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11+ or run make PYTHON=python3.x"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Everything, with the tests marked slow: the library at seeds 1-20 over real sockets (tens of minutes).
test-full: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "slow or not slow"

replay: $(STAMP)
	$(BIN)/harness replay --scenario gap_storm

# Every library scenario at seeds 1-3 on the bundled fixture, in parallel (docs/ci.md); not part of `make test`.
suite: $(STAMP)
	mkdir -p out
	$(BIN)/harness suite --scenarios all --seeds 1-3 --json out/suite.json --junit out/suite.xml

# Popular clients (ccxt, python-binance) through the scenario library, in a venv of their own (the
# `conformance` extra); writes docs/conformance.md. Not part of `make test`; needs PyPI once.
CONFORMANCE_VENV := .venv-conformance
conformance:
	@test -x $(CONFORMANCE_VENV)/bin/python || $(PYTHON) -m venv $(CONFORMANCE_VENV)
	$(CONFORMANCE_VENV)/bin/pip install --quiet -e '.[conformance]'
	$(CONFORMANCE_VENV)/bin/python -m harness.conformance --out docs/conformance.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# issue 12: harness replay --speed 0 on synths of 100,000 and 200,000 frames, RSS sampled over the run;
# refreshes the memory_* figures in bench/results.json (`make bench` does too; CI runs a smoke of it,
# tests/test_memory_smoke.py). `python -m bench.replay_memory --frames 1000000` for a larger N.
bench-memory: $(STAMP)
	$(BIN)/python -m bench.replay_memory

# Ten minutes of recording at 2,000 frames/s with a drop every minute (docs/reliability.md).
soak: $(STAMP)
	$(BIN)/python -m bench.soak_record --seconds 600 --rate 2000 --reconnect-every 60

# The fake venue under load: 50 clients for 60 s, one stops reading, slow_consumer on (docs/reliability.md).
bench-load: $(STAMP)
	$(BIN)/python -m bench.venue_load --clients 50 --seconds 60

# What the fake venue holds through waves of abuse beside a well-behaved client (docs/reliability.md).
bench-abuse: $(STAMP)
	$(BIN)/python -m bench.venue_abuse

# Both synthetic fixtures, rebuilt from their seed (the same bytes unless the simulator or the encoder changed).
fixture: $(STAMP)
	rm -rf fixtures/binance_spot_multi_synth fixtures/binance_spot_btcusdt_synth
	$(BIN)/harness synth --venue binance-spot --symbol BTCUSDT,ETHUSDT,SOLUSDT,SHIBUSDT --seconds 60 --seed 1 -o fixtures/binance_spot_multi_synth
	$(BIN)/harness synth --venue binance-spot --symbol BTCUSDT --seconds 60 --seed 1 -o fixtures/binance_spot_btcusdt_synth

fixture-real: $(STAMP)
	$(BIN)/harness import ../shared/data/real/binance_spot_btcusdt_20240808.hftbacktest.gz --seconds 60 -o fixtures/binance_spot_btcusdt_real_60s
	$(BIN)/harness import --format cryptofeed-v1 ../shared/data/real/okx_v5_books_2022.cryptofeed.ws.1.0 --seconds 4 -o fixtures/okx_books_real_2022_4s
	$(BIN)/harness import ../shared/data/real/binance_usdm_btcusdt_20240808.hftbacktest.gz --seconds 30 -o fixtures/binance_usdm_btcusdt_real_30s

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
