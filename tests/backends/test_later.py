"""`backends.threads.Later`: work submitted once, by the first `start` or else by `result`, and
follow-ups run on its thread right after it."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

import pytest

from backends.threads import Later


def test_started_once_whoever_starts_it() -> None:
    submitted: list[int] = []
    with ThreadPoolExecutor(2) as pool:

        def submit(fn):
            submitted.append(1)
            return pool.submit(fn)

        later = Later(submit, lambda: 41 + 1)
        assert not submitted  # nothing runs before it is started
        list(pool.map(lambda _: later.start(), range(8)))  # from several threads at once
        assert later.result() == 42 and later.result() == 42
        assert len(submitted) == 1

        unstarted = Later(submit, lambda: 41 + 1)
        assert unstarted.result() == 42  # asking for the result starts it
        assert len(submitted) == 2


def test_a_failure_reaches_whoever_asks_for_the_result() -> None:
    with ThreadPoolExecutor(1) as pool:
        later = Later(pool.submit, lambda: 1 / 0)
        later.start()
        with pytest.raises(ZeroDivisionError):
            later.result()


def test_follow_ups_run_on_the_same_thread_right_after_the_work() -> None:
    events: list[tuple[str, str]] = []

    def step(name: str, value=None):
        def run():
            events.append((name, threading.current_thread().name))
            return value

        return run

    with ThreadPoolExecutor(4, thread_name_prefix="pool") as pool:
        later = Later(pool.submit, step("work", 1))
        first, failing = later.also(step("first", 2)), later.also(lambda: 1 / 0)
        second = later.also(step("second", 3))
        assert second.result() == 3  # asking for a follow-up's result starts the work
        assert later.result() == 1 and first.result() == 2
        with pytest.raises(ZeroDivisionError):  # a follow-up's failure reaches only its own result
            failing.result()
        assert [name for name, _ in events] == ["work", "first", "second"]
        assert len({thread for _, thread in events}) == 1 and events[0][1].startswith("pool")
        with pytest.raises(RuntimeError, match="after the work was started"):
            later.also(step("late"))

    def cancelled_at_once(fn) -> Future:  # as a pool shut down with its queue cancelled
        future: Future = Future()
        future.cancel()
        return future

    never = Later(cancelled_at_once, step("never"))
    with pytest.raises(CancelledError):  # never ran: its follow-up's result raises instead of waiting
        never.also(step("never after")).result()
    assert "never" not in {name for name, _ in events}
