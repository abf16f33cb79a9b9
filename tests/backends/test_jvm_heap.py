"""The search JVM's memory does not grow with the machine's: garbage promoted into its old generation
is collected at a fixed size, not once 1/64 of the machine's memory (the JVM's default initial heap,
up to the -Xmx) has filled with it.

Each case runs in a fresh interpreter (a process starts one JVM, once) that believes it runs on a
128 GB machine (`-XX:MaxRAM`, read by the JVM as its physical memory), then promotes ~600 MB of
garbage as a serving worker's queries do, 50 MB alive at a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCENARIO = r"""
import json, sys
from backends.lucene.jvm import start_jvm

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

jnius = start_jvm(sys.argv[1])
string_builder, array_list = jnius.autoclass("java.lang.StringBuilder"), jnius.autoclass("java.util.ArrayList")
management = jnius.autoclass("java.lang.management.ManagementFactory")
old = next(p for p in management.getMemoryPoolMXBeans().toArray() if p.getName() == "Tenured Gen")
before = rss_mb()
for _ in range(12):  # 50 MB alive at a time: more than the young generation holds, so it is promoted
    alive = array_list()
    for _ in range(50):
        alive.add(string_builder(1 << 20))
    alive.clear()
print(json.dumps({"old_committed_mb": old.getUsage().getCommitted() / 2**20, "rss_growth_mb": rss_mb() - before,
                  "max_heap_mb": jnius.autoclass("java.lang.Runtime").getRuntime().maxMemory() / 2**20}))
"""


def run_scenario(max_heap: str) -> dict:
    env = {**os.environ, "JAVA_TOOL_OPTIONS": "-XX:MaxRAM=128g"}
    env.pop("DRSEARCH_JVM_GC_OPTIONS", None)
    proc = subprocess.run([sys.executable, "-c", SCENARIO, max_heap], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(180)
def test_promoted_garbage_is_collected_at_a_fixed_old_generation_size_on_a_large_machine():
    found = run_scenario("2g")
    # The JVM's default on 128 GB: an old generation of ~2 GB, filled by all 600 MB before any full collection.
    assert found["old_committed_mb"] <= 384, found
    assert found["rss_growth_mb"] < 400, found


@pytest.mark.timeout(180)
def test_a_max_heap_below_the_initial_heap_still_starts():
    found = run_scenario("128m")
    assert found["max_heap_mb"] <= 128, found
    assert found["old_committed_mb"] <= 128, found
