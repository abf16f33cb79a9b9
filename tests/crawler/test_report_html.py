"""A long HTML report (tests/crawler/report_texts.py) as the crawler extracts it: what becomes paragraphs."""

from __future__ import annotations

import re

import pytest

from crawler.extract import extract_html
from tests.crawler.report_texts import report_html


@pytest.fixture(scope="module")
def report():
    return extract_html(report_html())


def test_footnote_marks_are_not_glued_to_their_words(report):
    sentence = "Paragraph 2 of section 3: household surveys 32 show that exports from region 3 grew in 2023 3,"
    assert sentence in report.text
    assert not re.search(r"surveys\d|2023\d", report.text)


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
