"""The harness's view of my_book_client: a dozen lines that report what the client does.

Run it from this folder: `harness replay --scenario gap_storm --subject my_subject:create`.
"""

import time

from my_book_client import BookClient

from harness.observations import BookObservation, FinalBook, SyncEvent


class MySubject:
    def __init__(self, config):
        self.config = config

    async def run(self, report, stop):
        def on_book(symbol, book, recv_ns):
            bids, asks = book.top(20)
            now = time.monotonic_ns()
            report(BookObservation(symbol, book.last_update_id, True, bids, asks, recv_ns, recv_ns, now, now))

        def on_lost(symbol, reason):
            report(SyncEvent("resync", time.monotonic_ns(), reason, symbol))

        client = BookClient(self.config.ws_url, self.config.rest_url, self.config.symbols, on_book, on_lost)
        await client.run(stop)
        for symbol, state in client.books.items():
            bids, asks = state.book.top(None)
            report(FinalBook(symbol, state.book.last_update_id, state.synced, bids, asks))


def create(config):
    return MySubject(config)
