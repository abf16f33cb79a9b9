"""The worker's glibc malloc settings (service.malloc): activations below the mmap threshold live on
the heap while a job runs and go back to the system after it, at most every RELEASE_EVERY_S."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from service import malloc

REPO = Path(__file__).resolve().parents[2]


def test_then_release_returns_the_result_and_releases_at_most_every_interval(monkeypatch) -> None:
    released: list[float] = []
    monkeypatch.setattr(malloc, "release_free_memory", lambda: released.append(time.monotonic()))
    monkeypatch.setattr(malloc, "_last_release", [0.0])
    job = malloc.then_release(lambda x, *, y: x + y)
    assert job(1, y=2) == 3 and len(released) == 1
    assert [job(i, y=0) for i in range(5)] == list(range(5)) and len(released) == 1  # within the interval
    monkeypatch.setattr(malloc, "RELEASE_EVERY_S", 0.0)

    def failing() -> None:
        raise ValueError("bad query")

    with pytest.raises(ValueError, match="bad query"):
        malloc.then_release(failing)()
    assert len(released) == 2  # a failed job frees its memory too


@pytest.mark.skipif(malloc._libc() is None, reason="not glibc")
def test_freed_heap_blocks_stay_resident_until_released() -> None:
    # In a child process (mallopt is process-wide): 4 MiB blocks, below the 8 MiB threshold, come
    # from the heap; small live objects between them keep the heap from shrinking when they are
    # freed, so their pages stay resident until release_free_memory hands them back.
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        from service import malloc

        def anon_mb():
            for line in open("/proc/self/status"):
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024

        assert malloc.tune()
        start = anon_mb()
        blocks, pins = [], []
        for i in range(48):
            blocks.append(b"x" * (4 << 20))
            pins.append(bytearray(64 << 10))  # small, allocated after the block, kept alive
        held = anon_mb()
        del blocks
        freed = anon_mb()
        malloc.release_free_memory()
        print(round(held - start), round(freed - start), round(anon_mb() - start))
    """)
    out = subprocess.run([sys.executable, "-c", script, str(REPO)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    held, freed, released = map(int, out.stdout.split())
    assert held >= 180  # 48 x 4 MiB touched
    assert freed >= 150  # freed but still resident: on the heap, not unmapped
    assert released <= freed - 150  # handed back by malloc_trim
