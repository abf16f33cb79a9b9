"""Query-biased snippets: the window with the most query-word matches, cut at word boundaries."""

from __future__ import annotations

from ranker.snippets import snippet

FILLER = " ".join(f"filler{i}" for i in range(80))


def test_short_text_comes_back_whole_with_whitespace_collapsed():
    assert snippet("Heat  transfer\n\nin  layers", "heat") == "Heat transfer in layers"


def test_window_lands_on_the_densest_cluster_of_query_words():
    text = f"{FILLER} Inflation expectations and inflation targets shape policy. {FILLER}"
    out = snippet(text, "inflation targeting", max_chars=120)
    assert out.startswith("…") and out.endswith("…")
    assert "Inflation expectations and inflation targets" in out
    assert len(out) <= 122 and not out[1:].startswith(" ")
    assert all(w in text.split() or w.strip("…") in text.split() for w in out.split())  # whole words only


def test_five_character_prefixes_and_short_words():
    text = f"{FILLER} the DNase assay {FILLER} DNA repair genes {FILLER}"
    # "dna" is shorter than five characters, so it matches the word DNA only, never DNase.
    assert "DNA repair" in snippet(text, "dna", max_chars=60)
    # A five-character stem matches longer words: "targets" and "targeting" share "targe".
    assert "targets" in snippet(f"{FILLER} targets met {FILLER}", "targeting", max_chars=60)


def test_no_query_word_in_text_gives_the_start():
    out = snippet(FILLER, "photosynthesis", max_chars=50)
    assert out.startswith("filler0 ") and out.endswith("…")
