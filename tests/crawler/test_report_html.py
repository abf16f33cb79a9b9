"""A long HTML report (tests/crawler/report_texts.py) as the crawler extracts it: what becomes paragraphs."""

from __future__ import annotations

import re

import pytest

from crawler.extract import extract_html, space_note_marks
from indexer.chunker import count_words
from tests.crawler.report_texts import report_html


@pytest.fixture(scope="module")
def report():
    return extract_html(report_html())


def test_footnote_marks_are_not_glued_to_their_words(report):
    sentence = "Paragraph 2 of section 3: household surveys 32 show that exports from region 3 grew in 2023 3,"
    assert sentence in report.text
    assert not re.search(r"surveys\d|2023\d", report.text)


@pytest.mark.timeout(60)  # a hang guard only: each unclosed `<sup` was scanned to the next `>`, 2 MB took minutes
def test_note_marks_are_found_in_linear_time():
    """`<sup` with no `>` after it for megabytes (in a comment or a script's string, which hold no tags)."""
    page = "<html><body><!-- " + "<sup " * 400_000 + "--><p>household surveys<sup>12</sup> show</p></body></html>"
    assert space_note_marks(page) == page.replace("surveys<sup>", "surveys <sup>")
    assert space_note_marks(page.encode()) == page.replace("surveys<sup>", "surveys <sup>").encode()


def test_navigation_contents_and_footer_are_left_out(report):
    assert report.title == "World Trade Report 2023"
    assert "About us" not in report.text and "Contents" not in report.text and "Copyright" not in report.text
    paragraphs = report.text.split("\n\n")
    assert paragraphs[:3] == [
        "World Trade Report 2023",
        "1. Trade in region 1",
        paragraphs[2],
    ] and paragraphs[2].startswith("Paragraph 0 of section 1:")
    # table rows, notes and references are paragraphs of their own, none a giant one
    assert "| 2005 | 7.5 |" in paragraphs and max(len(p.split()) for p in paragraphs) < 60


def test_every_section_heading_opens_a_passage_with_its_section(report):
    from indexer.chunker import chunk_document
    from indexer.schema import Document

    passages = chunk_document(Document(doc_id="report", text=report.text, title=report.title))
    headings = [f"{i}. Trade in region {i}" for i in range(1, 9)]
    ends = [p.text.rsplit("\n\n", 1)[-1] for p in passages]
    assert not set(ends) & set(headings), ends
    assert all(count_words(p.text) <= 200 for p in passages)
