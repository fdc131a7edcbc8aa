"""The busy-polling loop (harness/busy_poll.py): it still serves sockets and timers like asyncio's own."""

from __future__ import annotations

import asyncio

import pytest

from harness.busy_poll import BusyPollSelector, busy_poll_loop_factory

LONG_SPIN_US = 30_000_000


def test_zero_is_asyncios_own_loop_and_a_negative_spin_is_a_bug() -> None:
    assert busy_poll_loop_factory(0) is None
    with pytest.raises(ValueError, match="spin_us"):
        busy_poll_loop_factory(-1)
    with pytest.raises(ValueError, match="spin_s"):
        BusyPollSelector(0.0)


def test_a_socket_round_trip_and_a_timer_inside_a_long_spin() -> None:
    async def main() -> tuple[bytes, float]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readexactly(5))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        writer.write(b"hello")
        answer = await reader.readexactly(5)
        writer.close()
        server.close()
        await server.wait_closed()
        loop = asyncio.get_running_loop()
        started = loop.time()
        fired = loop.create_future()
        loop.call_later(0.001, fired.set_result, None)
        await fired  # nothing else is ready: only the timer's deadline can end the spin
        return answer, loop.time() - started

    factory = busy_poll_loop_factory(LONG_SPIN_US)
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.get_loop()._selector, BusyPollSelector)  # type: ignore[attr-defined]
        answer, waited_s = runner.run(main())
    assert answer == b"hello"
    assert waited_s < LONG_SPIN_US / 1e6 / 2, "the spin outlasted the loop's next timer"
