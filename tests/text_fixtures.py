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
