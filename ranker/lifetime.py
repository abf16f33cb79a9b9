"""Who is using an open pipeline: closing waits for them, and a use after closing, or in a process
forked from the one that opened it (its JVM and thread pools are not there), is refused in one line."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from indexer.errors import IndexClosed


class Lifetime:
    def __init__(self, where: str):
        self.where = where  # named by every refusal
        self._pid = os.getpid()
        self._state = threading.Condition()  # guards the two below; `end` waits on it for the users
        self._users = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def check(self) -> None:
        """Raise `IndexClosed` if a use would be refused now."""
        self._check_process()
        self._check_open()

    def _check_process(self) -> None:
        # Before taking the lock: another thread of the parent may have held it when the child forked.
        if os.getpid() != self._pid:
            raise IndexClosed(f"this SearchPipeline was opened in process {self._pid} and cannot be used in a fork of it "
                              f"(process {os.getpid()}): start worker processes with the 'spawn' or 'forkserver' method "
                              "and open the index in each", where=self.where)  # fmt: skip

    def _check_open(self) -> None:
        if self._closed:
            raise IndexClosed("search pipeline is closed: open the index again with SearchPipeline.open", where=self.where)

    @contextmanager
    def use(self) -> Iterator[None]:
        """One use, which `end` waits for; refused once closed or in a forked child."""
        self._check_process()
        with self._state:
            self._check_open()
            self._users += 1
        try:
            yield
        finally:
            with self._state:
                self._users -= 1
                if not self._users:
                    self._state.notify_all()

    def end(self) -> bool:
        """Refuse new uses and wait for the current ones to end; False when it had already ended."""
        with self._state:
            if self._closed:
                return False
            self._closed = True
            while self._users:
                self._state.wait()
        return True
