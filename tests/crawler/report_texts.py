"""A realistic long report as a PDF's pages: a running header and a page-number footer on every page,
prose typeset in short lines with words hyphenated at line ends, ligature glyphs, and sentences that run
on from one page to the next. `REPORT_PAGES` are the pages' lines, for `fixture_web.report_pdf`."""

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
        "\ufb01ciency reviews of the state-owned railway found savings in main-",
        "tenance contracts, and procurement rules were simpli\ufb01ed to raise the",
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
