"""A long report as a PDF (tests/crawler/report_texts.py) read the way the crawler reads it: the text its
paragraphs are cut from, and what BM25 finds in them through a real `index build`."""

from __future__ import annotations

import json

import pytest

from crawler.extract import extract_pdf
from crawler.pdf_text import document_text_blocks
from ranker.format import result_dicts
from ranker.options import SearchOptions
from ranker.pipeline import SearchPipeline
from tests.crawler.fixture_web import minimal_pdf, report_pdf
from tests.crawler.report_texts import HEADER, REPORT_PAGES


@pytest.fixture(scope="module")
def report_text() -> str:
    return extract_pdf(report_pdf(REPORT_PAGES)).text


def test_running_header_and_page_numbers_are_left_out(report_text):
    assert "Ministry" not in report_text and "Outlook" not in report_text
    assert "Page" not in report_text and " of 4" not in report_text
    assert report_text.startswith("1. Overview of the economy\n\nThe economy grew by 2.1 percent")


def test_words_hyphenated_at_line_ends_are_joined(report_text):
    assert "household consumption and a recovery of international tourism" in report_text
    assert "real incomes recovered" in report_text and "export demand" in report_text
    assert "Efficiency reviews found savings in maintenance." in report_text  # a capitalised first part
    # a compound broken at its hyphen keeps it: the report writes `state-owned` elsewhere
    assert "and state-owned enterprises paid" in report_text
    assert "- " not in report_text


def test_ligatures_are_spelled_out(report_text):
    assert "the financial sector reported stronger profits" in report_text
    assert "flow of tenders from small firms and offices" in report_text
    assert not any("\ufb00" <= c <= "\ufb06" for c in report_text)


def test_sentence_running_on_into_the_next_page_is_one_paragraph(report_text):
    paragraphs = report_text.split("\n\n")
    assert "youth unemployment remained high in the northern regions, where the closure" in paragraphs[1]


def test_headings_and_short_last_lines_end_paragraphs(report_text):
    """pypdf gives lines: a short line that ends no sentence between two that start one is a heading, and
    a short line ending a sentence ends its paragraph."""
    paragraphs = report_text.split("\n\n")
    assert [p for p in paragraphs if len(p.split()) < 8] == [
        "1. Overview of the economy", "2. Prices and wages", "3. Public finances", "4. Risks to the outlook",
    ]
    assert paragraphs[5].endswith("Efficiency reviews found savings in maintenance.")
    assert paragraphs[6].startswith("The state-owned railway simplified its procurement rules")
    assert len(paragraphs) == 9


def test_soft_hyphens_are_dropped_and_join_a_word_at_a_line_end():
    pdf = report_pdf([["The inter\u00ad", "national trade in ser\u00advices grew."]])  # pypdf reads U+00AD
    assert extract_pdf(pdf).text == "The international trade in services grew."


def test_pages_that_all_show_the_same_lines_keep_them():
    text = extract_pdf(minimal_pdf(["Working paper on labour markets.", "We study wages."], pages=4)).text
    assert text.count("Working paper on labour markets.") == 4


def test_report_passages_are_found_by_their_words_and_not_by_the_header(tmp_path, report_text):
    from indexer.build import build_index
    from indexer.settings import BuildSettings, DenseSettings

    corpus = tmp_path / "docs.jsonl"
    other = "The ministry of agriculture published a finance outlook for rural cooperatives."
    with corpus.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"id": "report", "title": "Fiscal Outlook Report 2023", "text": report_text}) + "\n")
        f.write(json.dumps({"id": "other", "title": "Rural finance", "text": other}) + "\n")
    settings = BuildSettings(quiet=True, chunk_words=60, dense=DenseSettings(enabled=False))
    pipeline = SearchPipeline.open(build_index([corpus], tmp_path / "index", settings).build_dir)
    try:
        options = SearchOptions(k=5, mode="bm25", per_doc=0)
        found = pipeline.search("international tourism financial sector", options)
        assert found and found[0].passage.passage_id == "report#0"
        snippet = result_dicts([(found[0], "international financial")])[0]["snippet"]
        assert "international" in snippet and "financial" in snippet
        # the header's words are in no passage of the report: a query for them finds the other document only
        assert {r.passage.doc_id for r in pipeline.search("ministry", options)} == {"other"}
    finally:
        pipeline.close()


def test_chapter_headers_that_carry_the_printed_page_number_are_left_out():
    """A header that names the chapter repeats on too few pages to count as running, but carries the page's
    printed number (here the file's page number + 3, the first pages being front matter), on either side."""
    chapters = ["Prices", "Prices", "Wages", "Wages", "Public debt", "Public debt"]
    topics = ["rents", "food", "pay", "hours", "bonds", "loans"]
    pages = [
        [
            f"{n + 3} Chapter {n // 2 + 1}: {chapter}" if n % 2 else f"Chapter {n // 2 + 1}: {chapter} {n + 3}",
            f"Section {n + 1} discusses {topic} in some detail, with figures from a survey",
            f"of {topic}.",
        ]
        for n, (chapter, topic) in enumerate(zip(chapters, topics))
    ]
    text = extract_pdf(report_pdf(pages)).text
    assert "Chapter" not in text
    assert text.split("\n\n")[0] == "Section 1 discusses rents in some detail, with figures from a survey of rents."


def test_numbers_ending_a_page_are_page_numbers_only_when_they_number_it():
    """A table's last cells (a column of years, a count) stand at a page's foot as lines of a bare number, as
    a page number does; only the page's own number goes (here file page + 1, as most pages print it)."""
    body = [f"Section {n} reports the output of the national mills and farms in some detail" for n in range(6)]
    table = ["Table 2. Output by year", "2020", "2021"]  # numbers only in the pages' last lines
    numbered = [[*body, "Output fell in the dry years.", *table, str(n + 1)] for n in range(4)]
    paragraphs = extract_pdf(report_pdf(numbered)).text.split("\n\n")
    assert [p for p in paragraphs if p.isdigit()] == ["2020", "2021"] * 4  # no "1" to "4"
    unnumbered = [[*body, "Output fell in the dry years.", *table[:-1], "12"] for _ in range(2)]
    paragraphs = extract_pdf(report_pdf(unnumbered)).text.split("\n\n")
    assert [p for p in paragraphs if p.isdigit()] == ["2020", "12"] * 2  # 12 of 2 pages: no page number


@pytest.mark.timeout(60)  # a hang guard only: a word at a line's end was scanned from each of its characters
def test_long_unspaced_lines_are_joined_in_linear_time():
    """A page's text without spaces (CJK, or words a PDF places one by one) can be one line of 100,000s of word
    characters: a 200,000-character one took minutes to join, a page's 1 MB of content stream could hold more."""
    line = "\u8d22\u653f" * 100_000
    assert document_text_blocks([f"{line}\n{line}-\nowned {line}"]) == [f"{line} {line}owned {line}"]
