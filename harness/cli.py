"""The `harness` command line: thin option parsing over the modules that do the work.

Every command imports its implementation lazily, so `harness --help` stays fast and one broken
optional piece does not take the others down. A HarnessError becomes one `error:` line and exit 2,
and so does a usage error (an unknown option, a value out of range): `main` runs the app without
click's standalone handling, which would draw a box around it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.errors import HarnessError

WATCHDOG_DEFAULT_S = 60.0
"""`recorder.live.WATCHDOG_S`, repeated so `harness --help` does not import the recorder (a test pins them equal)."""
_WEIGHT_HELP = (
    "REST weight per IP and minute the fake venue serves before 429 and 418 (default: the recording's venue's, "
    "Binance spot 6000, USD-M 2400); 0 is off."
)
_HTML_HELP = "Write one self-contained HTML page of pictures here (latency, sync timeline, queue, expectations)."

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Record, synthesize, serve and replay exchange WebSocket market data.",
)


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@_user_errors
def synth(
    output: Annotated[Path, typer.Option("-o", "--output", help="Recording folder to create.")],
    venue: Annotated[str, typer.Option(help="Venue dialect to write.")] = "binance-spot",
    symbol: Annotated[
        str, typer.Option(help="Symbol, or comma-separated symbols on one connection: BTCUSDT,ETHUSDT.")
    ] = "BTCUSDT",
    seconds: Annotated[float, typer.Option(min=0.1, help="Simulated duration.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same bytes.")] = 1,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Frames per second per symbol, depth, trade and bookTicker together (adds @bookTicker): "
            "a busy real symbol is 100+. Default: the market's own pace, without bookTicker."
        ),
    ] = None,
) -> None:
    """Write a seeded synthetic recording, exactly as the recorder would have captured it."""
    from harness.synth.run import synthesize

    summary = synthesize(venue=venue, symbols=symbol, seconds=seconds, seed=seed, output=output, rate=rate)
    print(summary)


@app.command()
@_user_errors
def serve(
    recording: Annotated[Path, typer.Option(help="Recording to replay.")],
    speed: Annotated[
        float | None,
        typer.Option(min=0.0, help="1: recorded timing; 0: as fast as clients read (default 1, or the scenario's)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 0,
    scenario: Annotated[
        str | None, typer.Option(help="Inject this scenario's faults (library name or TOML file), for any client.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Fault seed (default: the scenario's).")] = None,
    injected: Annotated[
        Path | None, typer.Option(help="Where to write what was injected (default: SCENARIO-seedN.injected.json).")
    ] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Replay again for the next client after the end.")] = False,
    rebase_time: Annotated[
        bool, typer.Option("--rebase-time", help="Shift recorded event times (E, T) so the replay reads as now.")
    ] = False,
    rest_weight_limit: Annotated[int | None, typer.Option(min=0, help=_WEIGHT_HELP)] = None,
    max_connections: Annotated[
        int, typer.Option(min=0, help="Open WebSocket connections before handshakes get HTTP 503; 0 is off.")
    ] = 1000,
    max_frame_bytes: Annotated[
        int, typer.Option(min=0, help="Largest message a client may send (closed with 1009 past it); 0 is off.")
    ] = 65536,
    max_streams_per_connection: Annotated[
        int | None, typer.Option(min=0, help="Streams one connection may hold (default: the venue's); 0 is off.")
    ] = None,
    messages_per_second: Annotated[
        int | None,
        typer.Option(min=0, help="Client messages per sliding second before a close (default: the venue's); 0 is off."),
    ] = None,
    handshake_timeout: Annotated[
        float, typer.Option(min=0.0, help="Seconds from connect to a complete request (slowloris); 0 is off.")
    ] = 30.0,
    max_backlog_bytes: Annotated[
        int, typer.Option(min=0, help="Bytes held for a client that does not read before it is dropped; 0 is off.")
    ] = 8 * 2**20,
) -> None:
    """Serve a recording as a fake venue (WebSocket + REST) on loopback, with a scenario's faults if asked."""
    from replayer.serve_command import ServeLimits, run_serve

    run_serve(
        recording=recording,
        speed=speed,
        host=host,
        port=port,
        scenario=scenario,
        seed=seed,
        loop=loop,
        rebase_time=rebase_time,
        injected_path=injected,
        rest_weight_limit=rest_weight_limit,
        limits=ServeLimits(
            max_connections,
            max_frame_bytes,
            max_streams_per_connection,
            messages_per_second,
            handshake_timeout,
            max_backlog_bytes,
        ),
    )


@app.command()
@_user_errors
def record(
    output: Annotated[Path, typer.Option("-o", "--output", help="Recording folder to create.")],
    venue: Annotated[str, typer.Option(help="Venue to record.")] = "binance-spot",
    symbols: Annotated[
        str | None,
        typer.Option(help="Comma-separated symbols as the venue names them: BTCUSDT,ETHUSDT; BTC-USDT on OKX."),
    ] = None,
    ws_url: Annotated[str | None, typer.Option(help="WebSocket base URL (default: the live venue).")] = None,
    rest_url: Annotated[str | None, typer.Option(help="REST base URL (default: the live venue).")] = None,
    seconds: Annotated[float | None, typer.Option(min=0.0, help="Stop after this long (default: Ctrl-C).")] = None,
    book_ticker: Annotated[
        bool, typer.Option("--book-ticker", help="Also record each symbol's @bookTicker (best bid/ask).")
    ] = False,
    header: Annotated[
        list[str] | None,
        typer.Option(help="'Name: value' sent with every handshake and REST request; never recorded. Repeatable."),
    ] = None,
    stream: Annotated[
        list[str] | None, typer.Option(help="A further stream to record, e.g. a listen key (redacted). Repeatable.")
    ] = None,
    watchdog: Annotated[
        float, typer.Option(min=0.001, help="Reconnect after this many seconds without a frame.")
    ] = WATCHDOG_DEFAULT_S,
) -> None:
    """Record a venue's frames, REST snapshots and connection events to a recording."""
    from recorder.live import make_config, run_record

    config = make_config(
        venue=venue,
        symbols=None if symbols is None else [s.strip() for s in symbols.split(",") if s.strip()],
        ws_url=ws_url,
        rest_url=rest_url,
        seconds=seconds,
        output=output,
        book_ticker=book_ticker,
        headers=header or [],
        extra_streams=stream or [],
        watchdog_s=watchdog,
    )
    run_record(config)


@app.command("import")
@_user_errors
def import_capture(
    source: Annotated[Path, typer.Argument(help="The capture file (or a cryptofeed v1 capture's folder).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Recording folder to create.")],
    capture_format: Annotated[
        str, typer.Option("--format", help="Capture format: hftbacktest, cryptofeed-v1, cryptofeed-v3.")
    ] = "hftbacktest",
    seconds: Annotated[float | None, typer.Option(help="Import only the first this many seconds.")] = None,
    venue: Annotated[str | None, typer.Option(help="The venue, where the capture's URLs do not tell it.")] = None,
) -> None:
    """Turn another tool's capture into a recording, payload bytes unchanged."""
    from recorder.importing import run_import

    run_import(capture_format=capture_format, source=source, output=output, seconds=seconds, venue=venue)


@app.command()
@_user_errors
def inspect(
    path: Annotated[Path, typer.Argument(help="Recording folder or segment file.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarize a recording: duration, frames per kind and stream, rates, sequence holes, reconnects."""
    from harness.inspect_recording import inspect_recording

    print(inspect_recording(path, as_json=json_output))


@app.command()
@_user_errors
def replay(
    scenario: Annotated[str, typer.Option(help="Scenario name from the library, or a TOML file.")],
    recording: Annotated[Path | None, typer.Option(help="Recording to replay (default: the bundled fixture).")] = None,
    seed: Annotated[int | None, typer.Option(help="Fault seed (default: the scenario's).")] = None,
    speed: Annotated[float | None, typer.Option(min=0.0, help="Replay speed (default: the scenario's).")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML file here (one case per expectation).")] = None,
    subject: Annotated[str, typer.Option(help="Subject factory, module:function.")] = "harness.default_subject:create",
    rest_weight_limit: Annotated[int | None, typer.Option(min=0, help=_WEIGHT_HELP)] = None,
    html: Annotated[Path | None, typer.Option(help=_HTML_HELP)] = None,
    busy_poll_us: Annotated[
        int,
        typer.Option(
            min=0, max=1_000_000, help="The subject's loop polls this long before it sleeps: lower latency, a core."
        ),
    ] = 0,
) -> None:
    """Replay a recording through the fake venue with a scenario's faults; exit 0 pass, 1 fail, 2 bad input."""
    from harness.replay_command import run_replay_command

    raise typer.Exit(
        run_replay_command(
            scenario=scenario,
            recording=recording,
            seed=seed,
            speed=speed,
            report=report,
            junit=junit,
            subject=subject,
            rest_weight_limit=rest_weight_limit,
            html=html,
            owns_process=True,
            busy_poll_us=busy_poll_us,
        )
    )


@app.command()
@_user_errors
def suite(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="With --merge: shards' summary files, or folders holding them.")
    ] = None,
    scenarios: Annotated[
        str | None, typer.Option(help="Comma-separated scenario names or files, or all (the default).")
    ] = None,
    recordings: Annotated[
        str | None, typer.Option(help="Comma-separated recording folders (default: the bundled fixture).")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds: 1-20, 3, or 1,4,7-9 (default: each scenario's own).")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="Subject factory, module:function (default: harness.default_subject:create).")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(min=1, help="Cells at once, each in its own process (default: cores).")
    ] = None,
    shard: Annotated[str | None, typer.Option(help="Run only shard I of N of the matrix: I/N.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here (a case per cell and expectation).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the JSON summary here.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="Compare with this baseline file.")] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Write this run's cells into --baseline instead.")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="Join shards' JSON summaries (PATHS) instead of running.")
    ] = False,
    list_only: Annotated[bool, typer.Option("--list", help="Print the cells this run would take, and exit.")] = False,
    rest_weight_limit: Annotated[
        int | None,
        typer.Option(min=0, help="REST weight per IP and minute each cell's venue serves (default: its own); 0: off."),
    ] = None,
    html: Annotated[Path | None, typer.Option(help=_HTML_HELP)] = None,
) -> None:
    """Run a matrix of scenarios x recordings x seeds in parallel; exit 0 pass, 1 fail, 2 bad input."""
    from harness.suite_command import run_suite_command

    if paths and not merge:
        raise HarnessError(f"unexpected argument {str(paths[0])!r}; folders to join go with --merge")
    raise typer.Exit(
        run_suite_command(
            scenarios=scenarios,
            recordings=recordings,
            seeds=seeds,
            subject=subject,
            jobs=jobs,
            shard=shard,
            junit=junit,
            json_path=json_path,
            baseline=baseline,
            update_baseline=update_baseline,
            merge=list(paths or []) if merge else None,
            list_only=list_only,
            rest_weight_limit=rest_weight_limit,
            html=html,
        )
    )


@app.command()
@_user_errors
def search(
    subject: Annotated[str, typer.Option(help="Subject factory to search against, module:function.")],
    recording: Annotated[
        Path | None, typer.Option(help="Recording to replay (default: a 10 s synthetic slice written into -o).")
    ] = None,
    budget: Annotated[int | None, typer.Option(help="Schedules to try before giving up (default 50).")] = None,
    minutes: Annotated[float | None, typer.Option(help="Search this long instead of --budget schedules.")] = None,
    seed: Annotated[int, typer.Option(help="Search seed: the same seed and budget try the same schedules.")] = 0,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the scenario found.")] = Path("search-out"),
    kinds: Annotated[
        str, typer.Option(help="Fault kinds: timing-free (default), all, or a comma-separated list.")
    ] = "timing-free",
    speed: Annotated[
        float | None, typer.Option(min=0.0, help="Replay speed (default: 10 for timing-free kinds, else 4).")
    ] = None,
    max_faults: Annotated[int, typer.Option(min=1, help="Most faults in one schedule.")] = 4,
    shrink_budget: Annotated[int, typer.Option(min=0, help="Most replays spent shrinking a failure.")] = 100,
) -> None:
    """Search fault schedules for one the subject fails, shrink it, and write it as a scenario; exit 1 if found."""
    from harness.search_command import run_search_command

    raise typer.Exit(
        run_search_command(
            subject=subject,
            recording=recording,
            budget=budget,
            minutes=minutes,
            seed=seed,
            output=output,
            kinds=kinds,
            speed=speed,
            max_faults=max_faults,
            shrink_budget=shrink_budget,
        )
    )


@app.command()
@_user_errors
def scenarios() -> None:
    """List the scenario library."""
    from harness.scenarios import list_scenarios

    for item in list_scenarios():
        print(f"{item.name:<20} {item.description}")


def main() -> None:
    """The `harness` console script."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:
        # Usage errors are click's exceptions, which typer vendors privately: known by their interface.
        describe = getattr(exc, "format_message", None)
        if describe is None:
            raise
        message = describe()
        if message:  # empty after `harness` alone, whose help has just been printed
            print(f"error: {message}", file=sys.stderr)
        code = getattr(exc, "exit_code", 2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
