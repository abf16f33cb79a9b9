"""A small web-documents corpus: listed and unlisted domains, subdomains, publication dates (one site
has none), two passages per document. Served by the session fixture `web_server` (tests/service/conftest.py)."""

from __future__ import annotations

# (site as per-domain caps count it, URL pattern, authority entry or None); 8 documents each.
SITES = [
    ("imf.org", "https://www.imf.org/en/Publications/WP/{n}", ("International Monetary Fund", "intergovernmental", 1, "int")),
    ("imf.org", "https://data.imf.org/series/{n}", ("International Monetary Fund", "intergovernmental", 1, "int")),
    ("nber.org", "https://www.nber.org/papers/w{n}", ("National Bureau of Economic Research", "research_institute", 2, "us")),
    ("ox.ac.uk", "https://www.ox.ac.uk/research/{n}", ("University of Oxford", "university", 2, "gb")),
    ("example.com", "https://econ-blog.example.com/post/{n}", None),
    ("marketchatter.net", "https://marketchatter.net/{n}", None),  # no publication dates
]
PER_SITE = 8
Q = "inflation interest rates central bank consumer prices"


def web_docs() -> list[dict]:
    docs = []
    for s, (_, pattern, entry) in enumerate(SITES):
        org = entry[0] if entry else "an independent commentator"
        for j in range(PER_SITE):
            n = 100 * s + j
            first = (f"Inflation report {n} by {org}: how interest rates set by the central bank shape consumer prices, "
                     f"wages and household savings in economy number {j}, with evidence gathered over many quarters.")  # fmt: skip
            second = (f"Inflation outlook appendix {n}: housing costs, energy prices and monetary tightening, and what "
                      f"the figures suggest for growth, employment and public debt in the coming years.")  # fmt: skip
            doc = {"id": f"d{n}", "title": f"Inflation report {n}", "text": f"{first}\n\n{second}", "url": pattern.format(n=n)}
            if "marketchatter" not in pattern:
                doc["published"] = f"{2014 + j}-{j + 1:02d}-15"
            docs.append(doc)
    return docs
