"""A build's recorded durations on a host whose clock is stepped (NTP correcting it, a VM resumed)."""

from __future__ import annotations

import json
import time

from indexer.build import build_index
from indexer.settings import BuildSettings, DenseSettings


def test_durations_are_measured_on_a_clock_that_only_goes_forward(tmp_path, monkeypatch):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "title": f"t{i}", "text": f"word{i} text"}) + "\n"
                              for i in range(20)))  # fmt: skip
    wall, steps = time.time, [0]

    def stepped_back() -> float:  # each reading an hour before the last: the wall clock set back, again and again
        steps[0] += 1
        return wall() - 3600 * steps[0]

    monkeypatch.setattr(time, "time", stepped_back)
    settings = BuildSettings(chunk_words=0, quiet=True, dense=DenseSettings(enabled=False))
    manifest = build_index([corpus], tmp_path / "idx", settings).manifest
    monkeypatch.undo()
    assert 0 <= manifest.build_seconds < 3600, manifest.build_seconds
    assert all(0 <= seconds < 3600 for seconds in manifest.timings.values()), manifest.timings
