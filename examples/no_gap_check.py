"""my_book_client with its gap check removed: it applies any update newer than its book.

Harmless on a clean feed; under `gap_storm` its book silently misses what the lost updates changed.
"""

import my_subject
from my_book_client import BookClient


class GapBlindClient(BookClient):
    def continues(self, state, update):
        return True


def create(config):
    my_subject.BookClient = GapBlindClient
    return my_subject.create(config)
