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
