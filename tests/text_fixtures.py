"""A tiny corpus of unambiguous one-topic documents (id, title, text) for dense-retrieval tests."""

DOCS = [
    ("photo", "Photosynthesis", "Green plants use chlorophyll in their chloroplasts to capture sunlight and turn water and carbon dioxide into glucose and oxygen."),
    ("volcano", "Volcanoes", "Magma rises through cracks in the crust and erupts as lava, ash and gas from a volcanic vent."),
    ("tides", "Ocean tides", "The gravitational pull of the Moon and the Sun raises and lowers sea levels twice a day."),
    ("bread", "Baking bread", "Yeast ferments the sugars in kneaded dough, releasing carbon dioxide that makes the loaf rise in the oven."),
    ("chess", "Chess openings", "The Sicilian Defence is a popular reply to the king's pawn opening, leading to sharp tactical positions."),
    ("vaccine", "Vaccination", "Vaccines train the immune system to recognise a pathogen by exposing it to a harmless antigen."),
    ("bitcoin", "Bitcoin", "A decentralised digital currency whose transactions are recorded on a public blockchain ledger by miners."),
    ("tennis", "Tennis scoring", "Points in a game go love, fifteen, thirty, forty; a set is won by the first player to six games with a two-game lead."),
    ("jazz", "Jazz", "Jazz music grew from blues and ragtime in New Orleans and is known for improvisation and swing rhythms."),
    ("glacier", "Glaciers", "Compacted snow turns into slowly flowing ice that carves U-shaped valleys in mountain landscapes."),
    ("python", "Python language", "Python is a high-level programming language with dynamic typing and significant indentation."),
    ("sleep", "Sleep", "During deep sleep the brain consolidates memories and the body repairs tissue and releases growth hormone."),
]

AGENT_NOW = "2026-11-30T12:00:00Z"

# Sourced documents for the agent tools (fetch, paging, recency, country and language filters).
AGENT_DOCS = [
    {"id": "cdc-flu", "title": "Influenza vaccination guidance", "url": "https://www.cdc.gov/flu/vaccine.html",
     "published": "2026-11-28", "language": "en",
     "text": "Annual influenza vaccination is recommended for everyone six months and older.\n\n"
             "The vaccine is updated each season to match the circulating influenza strains.\n\n"
             "Pregnant people and adults over sixty-five face the highest risk of severe influenza complications, "
             "so clinics prioritise them when vaccine supply is short.\n\n"
             "Side effects of the influenza shot are usually mild: a sore arm, low fever or aches for a day."},
    {"id": "ons-wages", "title": "Average weekly earnings in Great Britain", "url": "https://www.ons.gov.uk/earnings/weekly",
     "published": "2026-11-10", "language": "eng",
     "text": "Average regular pay growth for employees in Great Britain was five percent in the latest quarter, "
             "while real earnings adjusted for inflation rose slightly as consumer price inflation eased."},
    {"id": "destatis-wages", "title": "Reallöhne in Deutschland", "url": "https://www.destatis.de/loehne",
     "published": "2026-06-01", "language": "deu",
     "text": "Die Reallöhne in Deutschland sind im zweiten Quartal gestiegen, weil die Nominallöhne stärker "
             "zunahmen als die Verbraucherpreise. Die Inflation schwächte sich ab, earnings and wages rose."},
    {"id": "nih-vaccines", "title": "How vaccines are tested", "url": "https://www.nih.gov/vaccines/testing",
     "language": "en",
     "text": "Before approval every vaccine passes three phases of clinical trials that test its safety, "
             "the immune response it triggers and how well it prevents the disease in thousands of volunteers."},
    {"id": "who-vaccines-2019", "title": "Vaccine hesitancy report", "url": "https://www.who.int/vaccines/hesitancy",
     "published": "2019-03-01", "language": "en",
     "text": "Vaccine hesitancy, the reluctance or refusal to vaccinate despite the availability of vaccines, "
             "threatens to reverse progress made in tackling vaccine-preventable diseases."},
]

# Crawled copies (ranking tests of collapsing copies of one text): press releases on one site, each
# ending with the same "About the Fund" paragraph, and one report paragraph stored twice, on a listed
# tier-1 site and on an unlisted mirror. Built with chunk_words=40: each paragraph is one passage.
FUND_ABOUT = ("About the Fund. The International Monetary Fund works to achieve sustainable growth and prosperity "
              "for all of its 190 member countries. It does so by supporting economic policies that promote "
              "financial stability and monetary cooperation, which are essential to increase productivity, job "
              "creation, and economic well-being.")
FUND_QUERY = "about the fund international monetary fund member countries"
REPORT = ("Productivity growth in advanced economies slowed markedly after 2005, and the slowdown in total factor "
          "productivity accounts for most of the decline in labour productivity growth, with weak diffusion of "
          "technology from frontier firms to laggards as a key driver.")
REPORT_QUERY = "total factor productivity slowdown diffusion frontier firms laggards"
PRESS_COUNTRIES = ("Ghana", "Peru", "Egypt", "Pakistan", "Kenya", "Ukraine", "Sri Lanka", "Argentina", "Zambia",
                   "Jordan", "Ecuador", "Tunisia")  # fmt: skip


def press_release_docs() -> list[dict]:
    """12 press releases on www.imf.org sharing their last paragraph, the report on www.oecd.org and on
    an unlisted mirror (whose id sorts first: without the authority prior, it wins the tie), filler."""
    import random

    docs = []
    for i, country in enumerate(PRESS_COUNTRIES):
        body = (f"IMF staff reached a staff-level agreement with {country} on review {i + 2} of its programme. The "
                f"authorities of {country} remain committed to fiscal consolidation, a flexible exchange rate and "
                f"reforms that protect social spending while inflation in {country} declines toward the target.")
        docs.append({"id": f"pr{i:02d}", "url": f"https://www.imf.org/en/News/Articles/2024/pr24{i:03d}",
                     "title": f"IMF staff reaches agreement with {country}", "text": f"{body}\n\n{FUND_ABOUT}"})
    docs.append({"id": "a-mirror", "url": "https://econ-mirror.example.net/reports/productivity",
                 "title": "Productivity report", "text": REPORT})
    # The copy in other case and spacing: the same text as copies compare (casefolded, whitespace collapsed).
    docs.append({"id": "oecd", "url": "https://www.oecd.org/economy/productivity-report",
                 "title": "Productivity report",
                 "text": "  " + REPORT.upper().replace(" ", "\n", 3).replace(", ", ",   ")})
    words = "market price policy growth labour trade energy climate health survey output credit housing".split()
    for i in range(30):
        docs.append({"id": f"filler{i:02d}", "url": f"https://news{i % 5}.example.com/{i}",
                     "text": " ".join(random.Random(i).choices(words, k=45))})
    return docs
