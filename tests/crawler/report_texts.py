"""A realistic long report as a PDF's pages: a running header and a page-number footer on every page,
numbered section headings, prose typeset in lines of about 70 characters with words hyphenated at line
ends, ligature glyphs, a paragraph ending in a short line, and sentences that run on from one page to the
next. `REPORT_PAGES` are the pages' lines, for `fixture_web.report_pdf`."""

from __future__ import annotations

HEADER = "Ministry of Finance \u2014 Fiscal Outlook Report 2023"

_BODIES = [
    [
        "1. Overview of the economy",
        "The economy grew by 2.1 percent in 2023, supported by household con-",
        "sumption and a recovery of inter-",
        "national tourism after three weak years. Exports of machinery rose,",
        "while the \ufb01nancial sector reported stronger pro\ufb01ts than expected.",
        "Public investment in rail and ports was raised, and state-",
        "owned enterprises paid higher dividends to the treasury.",
        "Unemployment fell to 4.2 percent, its lowest level since the series",
        "began, although youth unemployment remained high in the northern",
    ],
    [
        "regions, where the closure of two steel mills weighed on hiring.",
        "2. Prices and wages",
        "Consumer prices rose 3.4 percent on average. Energy prices fell in the",
        "second half of the year, and the core rate eased to 2.9 percent. Nominal",
        "wages grew faster than prices for the \ufb01rst time since 2020, so real in-",
        "comes recovered part of their earlier losses. Rents, however, contin-",
        "ued to climb in the capital, where the supply of new dwellings lagged.",
        "The central bank kept its policy rate unchanged through the autumn.",
    ],
    [
        "3. Public \ufb01nances",
        "The de\ufb01cit narrowed to 1.8 percent of output as tax revenue exceeded",
        "the budget forecast. Spending on pensions and health care rose with an",
        "ageing population, and interest payments increased as older debt was",
        "re\ufb01nanced at higher rates. The debt ratio declined to 58 percent. Ef-",
        "\ufb01ciency reviews found savings in main-",
        "tenance.",
        "The state-owned railway simpli\ufb01ed its procurement rules to raise the",
        "\ufb02ow of tenders from small \ufb01rms and o\ufb03ces in rural districts.",
    ],
    [
        "4. Risks to the outlook",
        "A slowdown among the main trading partners would reduce export de-",
        "mand, and a renewed rise in energy prices would push in\ufb02ation up again.",
        "Climate risks include drought in the agricultural south and \ufb02ooding",
        "along the coast, both of which have become more frequent this decade.",
        "On the upside, faster adoption of digital payments could lift produc-",
        "tivity in retail and logistics over the coming years.",
    ],
]

REPORT_PAGES = [[HEADER, "", *body, "", f"Page {n} of {len(_BODIES)}"] for n, body in enumerate(_BODIES, 1)]


def report_html() -> bytes:
    """A long HTML report: site navigation, a table of contents, eight sections whose sentences carry
    footnote marks (`<sup><a href="#fn11">11</a></sup>`), a data table, notes, references and a footer."""
    toc = "".join(f'<li><a href="#s{i}">{i}. Trade in region {i}</a></li>' for i in range(1, 9))
    sections = []
    for i in range(1, 9):
        paragraphs = "".join(
            f"<p>Paragraph {j} of section {i}: household surveys<sup><a href='#fn{i}{j}'>{i}{j}</a></sup> show "
            f"that exports from region {i} grew in 2023<sup>{j + 1}</sup>, while wages rose more slowly than "
            f"prices. Firms reported longer delivery times and higher costs for shipping containers.</p>"
            for j in range(4)
        )
        sections.append(f'<section id="s{i}"><h2>{i}. Trade in region {i}</h2>{paragraphs}</section>')
    table = "<table><tr><th>Year</th><th>Exports</th></tr>" + "".join(
        f"<tr><td>{2000 + k}</td><td>{k * 1.5}</td></tr>" for k in range(20)
    ) + "</table>"
    notes = "".join(f'<li id="fn{k}">Survey wave {k}, see the annex.</li>' for k in range(10))
    refs = "".join(
        f"<li>Author{k}, A. ({2000 + k}). A study of trade {k}. Journal of Economics, {k}(2), 1-20.</li>"
        for k in range(30)
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>World Trade Report 2023 | Trade Office</title></head><body><header><nav><ul>"
        '<li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/pubs">Publications</a></li>'
        "</ul></nav></header><main><article><h1>World Trade Report 2023</h1>"
        f'<nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav>{"".join(sections)}{table}'
        f"<h2>Notes</h2><ol>{notes}</ol><h2>References</h2><ol>{refs}</ol></article></main>"
        "<footer><p>Copyright 2023 Trade Office. All rights reserved. Terms of use.</p></footer></body></html>"
    ).encode("utf-8")
