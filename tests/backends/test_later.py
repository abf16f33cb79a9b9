"""`backends.threads.Later`: work submitted once, by the first `start` or else by `result`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from backends.threads import Later


def test_started_once_whoever_starts_it() -> None:
    submitted: list[int] = []
    with ThreadPoolExecutor(2) as pool:

        def submit():
            submitted.append(1)
            return pool.submit(lambda: 41 + 1)

        later = Later(submit)
        assert not submitted  # nothing runs before it is started
        list(pool.map(lambda _: later.start(), range(8)))  # from several threads at once
        assert later.result() == 42 and later.result() == 42
        assert len(submitted) == 1

        unstarted = Later(submit)
        assert unstarted.result() == 42  # asking for the result starts it
        assert len(submitted) == 2


def test_a_failure_reaches_whoever_asks_for_the_result() -> None:
    with ThreadPoolExecutor(1) as pool:
        later = Later(lambda: pool.submit(lambda: 1 / 0))
        later.start()
        with pytest.raises(ZeroDivisionError):
            later.result()
