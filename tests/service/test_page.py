"""The search page (`GET /`) in a real headless Chromium (Debian's `chromium`, driven by Playwright)
against a live server over the small web-documents index: what a person sees must be what the API returns.

Screenshots go to the test's output folder; DRSEARCH_PAGE_SCREENSHOTS=docs/img also copies them there
(how the images in docs/ are made).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.service.conftest import LiveServer, build_tiny_index, start_server, tiny_docs
from tests.service.web_docs import PER_SITE, Q, SITES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = Path(os.environ.get("DRSEARCH_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for every test of this module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: `make browser` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


def new_tab(browser, server: LiveServer):
    """A fresh tab (1280x900) on `server`; fails the test on any script error in the page."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def page(browser, web_server: LiveServer):
    """A fresh tab on the web-documents server."""
    yield from new_tab(browser, web_server)


@pytest.fixture
def api(web_server: LiveServer) -> Iterator[httpx.Client]:
    with web_server.client() as c:
        yield c


def open_page(page, url: str = "/") -> None:
    page.goto(url)
    page.wait_for_selector("body[data-renders]")


def search(page, query: str, **fields: str) -> None:
    """Type into the form the way a person does and press Enter in the query box."""
    for name, value in fields.items():
        if name == "min_tier":
            page.select_option("#min_tier", value)
        else:
            page.fill(f"#{name}", value)
    page.fill("#q", query)
    before = page.get_attribute("body", "data-renders")
    page.press("#q", "Enter")
    page.wait_for_function("n => document.body.dataset.renders !== n", arg=before)


def shown(page) -> list[dict]:
    """The hits on screen, as the page rendered them."""
    return page.eval_on_selector_all(".hit", """hits => hits.map(h => ({
        passage_id: h.dataset.passageId, rank: h.querySelector('.rank').textContent,
        title: h.querySelector('.title').textContent, href: h.querySelector('.title').getAttribute('href'),
        domain: h.querySelector('.domain').textContent, badge: h.querySelector('.badge').textContent,
        badge_title: h.querySelector('.badge').getAttribute('title'), date: h.querySelector('.date')?.textContent ?? null,
        snippet: h.querySelector('.snippet').textContent, marks: [...h.querySelectorAll('.snippet mark')].map(m => m.textContent),
        scores: h.querySelector('.scores').textContent }))""")


def api_hits(api: httpx.Client, **body) -> list[dict]:
    r = api.post("/v1/search", json={"queries": [Q], **body})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["hits"]


def under(url: str, domain: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == domain or host.endswith("." + domain)


def screenshot(page, tmp_path: Path, name: str) -> Path:
    """A full-page PNG, checked not to be blank (many colours, not one flat fill); copied to
    DRSEARCH_PAGE_SCREENSHOTS when set."""
    from PIL import Image

    path = tmp_path / name
    page.screenshot(path=str(path), full_page=False)
    with Image.open(path) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert img.width >= 800 and img.height >= 600
    assert path.stat().st_size > 20_000 and (colours is None or len(colours) > 64), f"{path} looks blank"
    if target := os.environ.get("DRSEARCH_PAGE_SCREENSHOTS"):  # 256 colours: a third of the size, same look
        Path(target).mkdir(parents=True, exist_ok=True)
        with Image.open(path) as img:
            img.convert("RGB").quantize(256).save(Path(target) / name, optimize=True)
    return path


def test_search_shows_k_results_with_snippets_badges_and_scores(page, api, tmp_path):
    open_page(page)
    search(page, Q, k="6")
    hits = shown(page)
    expected = api_hits(api, k=6)
    assert [h["passage_id"] for h in hits] == [h["passage_id"] for h in expected] and len(hits) == 6
    authority = {urlsplit(pattern).hostname: entry for _, pattern, entry in SITES}
    for got, want in zip(hits, expected):
        assert got["rank"] == str(want["rank"]) and got["title"] == want["title"] and got["href"] == want["url"]
        assert got["domain"] == want["domain"] and got["date"] == want["published"]
        assert got["snippet"] == want["snippet"] and {m.lower()[:5] for m in got["marks"]} >= {"infla", "inter"}
        entry = authority[urlsplit(want["url"]).hostname]
        if entry:
            name, category, tier, country = entry
            assert got["badge"] == f"Tier {tier} {category.replace('_', ' ')}" and got["badge_title"] == f"{name} ({country.upper()})"
        else:
            assert got["badge"] == "Unlisted"
        final = f"{want['scores']['final']:.3f}"
        assert "BM25" in got["scores"] and "Dense" in got["scores"] and f"Final{final}" in got["scores"]
        assert f"#{want['ranks']['bm25']}" in got["scores"]
    assert page.input_value("#k") == "6" and "k=6" in page.url
    screenshot(page, tmp_path, "search-page-results.png")


def test_domain_and_tier_filters_change_the_list(page, api):
    open_page(page)
    search(page, Q, k="10")
    unfiltered = [h["passage_id"] for h in shown(page)]
    search(page, Q, include_domains="nber.org, example.com")
    two_sites = shown(page)
    assert [h["passage_id"] for h in two_sites] == [h["passage_id"] for h in api_hits(api, k=10, include_domains=["nber.org", "example.com"])]
    assert len(two_sites) == 10 and two_sites != unfiltered
    assert {h["badge"] for h in two_sites} == {"Tier 2 research institute", "Unlisted"}
    assert all(under(h["href"], "nber.org") or under(h["href"], "example.com") for h in two_sites)
    search(page, Q, min_tier="2")  # nber.org is tier 2, example.com unlisted: only nber.org is left
    nber = shown(page)
    assert len(nber) == PER_SITE and all(under(h["href"], "nber.org") for h in nber)
    search(page, Q, include_domains="", min_tier="1")
    tier1 = shown(page)
    assert [h["passage_id"] for h in tier1] == [h["passage_id"] for h in api_hits(api, k=10, min_tier=1)]
    assert len(tier1) == 10 and all(h["badge"].startswith("Tier 1") and under(h["href"], "imf.org") for h in tier1)
    assert page.locator("#filter-count").text_content() == "1 active"
    before = page.get_attribute("body", "data-renders")
    page.go_back()  # the browser's history holds each list with its filters
    page.wait_for_function("n => document.body.dataset.renders !== n", arg=before)
    assert shown(page) == nber and page.input_value("#include_domains") == "nber.org, example.com"
    assert page.input_value("#min_tier") == "2"


def test_open_document_highlights_the_passage(page, api, tmp_path):
    open_page(page)
    query = "housing costs energy prices monetary tightening appendix"  # words of each document's second passage
    search(page, query, k="5", include_domains="ox.ac.uk")
    first = shown(page)[0]
    assert first["passage_id"].endswith("#1")
    results_url = page.url
    page.keyboard.press("Tab")  # keyboard only: from the query box, "/" refocuses it; Enter follows a focused link
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.locator(".hit").first.locator(".open-doc").focus()
    page.keyboard.press("Enter")
    hit = page.wait_for_selector(".passage.matched")
    doc = api.get(f"/v1/documents/{first['passage_id'].split('#')[0]}").json()
    assert hit.get_attribute("data-passage-id") == first["passage_id"] and hit.get_attribute("aria-current") == "true"
    passages = page.eval_on_selector_all(".passage", "ps => ps.map(p => [p.dataset.passageId, p.querySelector('.p-text').textContent])")
    assert passages == [[p["passage_id"], doc["text"][p["start"]:p["end"]]] for p in doc["passages"]]
    assert {m.lower()[:5] for m in hit.eval_on_selector_all("mark", "ms => ms.map(m => m.textContent)")} >= {"housi", "energ"}
    in_view = hit.evaluate("e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }")
    assert in_view
    meta = page.text_content(".doc-meta")
    assert doc["url"] in meta and doc["published"] in meta and "University of Oxford" in page.get_attribute(".doc-meta .badge", "title")
    assert f"doc={doc['doc_id']}" in page.url
    screenshot(page, tmp_path, "search-page-document.png")
    page.keyboard.press("Escape")  # back to the same list
    page.wait_for_selector(".hit")
    assert page.url == results_url and shown(page)[0]["passage_id"] == first["passage_id"]


def test_invalid_date_shows_the_api_error_next_to_the_field(page, api):
    open_page(page)
    search(page, Q, published_after="2020/01")
    message = api.post("/v1/search", json={"queries": [Q], "published_after": "2020/01"}).json()["error"]["message"]
    error = page.locator("#err-published_after")
    assert error.is_visible() and error.text_content() == message and "published_after" in message
    assert page.get_attribute("#published_after", "aria-invalid") == "true"
    assert page.locator(".hit").count() == 0 and page.locator("#err-published_before").is_hidden()
    search(page, Q, published_after="2020")  # fixed: the error goes, results come
    assert error.is_hidden() and len(shown(page)) == 10


def test_reloaded_url_gives_the_same_list(page, browser, web_server):
    open_page(page)
    page.click("label[for=mode-bm25]")
    search(page, f"{Q}\nhousehold savings and wages", k="4", exclude_domains="imf.org", max_per_domain="1", published_after="2016")
    before = shown(page)
    assert len(before) == 6 and page.locator(".query-result").count() == 2  # one list per query line
    url = page.url
    page.reload()
    page.wait_for_selector("body[data-renders]")
    assert shown(page) == before and page.input_value("#exclude_domains") == "imf.org"
    assert page.is_checked("#mode-bm25") and page.input_value("#published_after") == "2016"
    other = browser.new_page()  # a shared link: a new tab, nothing but the URL
    try:
        open_page(other, url)
        assert shown(other) == before
    finally:
        other.close()


def test_a_search_overtaken_by_a_cached_list_leaves_no_busy_mark(page):
    """A slow search (held here until released) that the Back button overtakes with a cached list: the
    list on screen is not marked busy, neither then nor when the overtaken answer arrives."""
    held = []
    open_page(page)
    search(page, Q, k="5")
    page.route("**/v1/search", lambda route: held.append(route))
    page.fill("#q", "household savings and wages")
    page.press("#q", "Enter")
    page.wait_for_function("document.querySelector('#results').getAttribute('aria-busy') === 'true'")
    page.go_back()  # the list before it, from the page's cache
    page.wait_for_function("q => document.querySelector('#q').value === q", arg=Q)
    assert len(shown(page)) == 5 and page.get_attribute("#results", "aria-busy") is None
    with page.expect_event("requestfinished"):
        held.pop().continue_()
    page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # the page reads the late answer
    assert len(shown(page)) == 5 and page.get_attribute("#results", "aria-busy") is None


def test_text_from_the_index_or_the_query_is_never_markup(page):
    open_page(page)
    search(page, "<img src=x onerror=alert(1)> inflation")
    page.wait_for_selector(".hit")
    assert page.text_content(".qtext") == "<img src=x onerror=alert(1)> inflation"
    assert page.locator("#results img").count() == 0


def test_index_panel_and_narrow_window(page, api):
    open_page(page)
    info = api.get("/v1/index").json()
    page.click("#index-panel summary")
    assert page.text_content("#ix-version") == info["version"]
    assert page.text_content("#ix-passages") == str(2 * len(SITES) * PER_SITE)
    assert page.text_content("#ix-documents") == str(len(SITES) * PER_SITE)
    assert page.text_content("#ix-mode") == info["default_mode"]
    assert page.get_attribute("#ix-authority code", "title") == info["authority"]["content_hash"]
    page.click("#index-panel summary")
    page.set_viewport_size({"width": 380, "height": 800})
    search(page, Q)
    assert len(shown(page)) == 10
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.locator(".open-doc").nth(9).click()  # the form stacks above the document: the passage is scrolled to
    matched = page.wait_for_selector(".passage.matched")
    assert page.evaluate("scrollY") > 0 and matched.evaluate("e => e.getBoundingClientRect().top >= 0 && e.getBoundingClientRect().bottom <= innerHeight")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


MARKUP = '<img src=x onerror="document.body.dataset.owned=1"><b id=injected>lava</b>'


def test_key_protected_bm25_only_server(browser, tmp_path):
    """A server that requires X-API-Key, over an index without the dense leg and without URLs, with a
    document whose title and text are HTML."""
    docs = [*tiny_docs(), {"id": "html", "title": MARKUP, "text": f"Volcanic {MARKUP} lava flows. <script>document.body.dataset.owned=1</script>"}]
    srv = start_server(index=build_tiny_index(tmp_path / "index", docs, dense=False), api_key="page-test-key", threads=1, warmup=False)
    context = browser.new_context(base_url=srv.base_url, viewport={"width": 1280, "height": 900})
    try:
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        open_page(page)
        assert page.is_checked("#mode-bm25") and page.text_content("#ix-mode") == "bm25 (no dense leg)"
        search(page, "volcanic eruption lava")
        key_error = page.locator("#err-X-API-Key")
        assert key_error.is_visible() and key_error.text_content() == "missing or wrong X-API-Key"
        assert page.locator(".hit").count() == 0
        page.fill("#api-key", "page-test-key")
        before = page.get_attribute("body", "data-renders")
        page.press("#api-key", "Enter")
        page.wait_for_function("n => document.body.dataset.renders !== n", arg=before)
        hits = shown(page)
        assert hits[0]["passage_id"] == "volcano#0" and hits[0]["badge"] == "Unlisted" and key_error.is_hidden()
        assert "key" not in page.url
        page.fill("#api-key", "clé—ключ")  # "—" and Cyrillic are not ISO-8859-1: no HTTP header can carry them
        page.press("#api-key", "Enter")
        page.wait_for_selector("#err-X-API-Key:not([hidden]), #err-form:not([hidden])")
        assert "U+2014" in key_error.text_content() and page.get_attribute("#api-key", "aria-invalid") == "true"
        assert page.locator("#err-form").is_hidden() and "unavailable" not in page.text_content("#ix-summary")
        assert shown(page) == hits  # the key in use is still the right one
        page.fill("#api-key", "page-test-key")
        before = page.get_attribute("body", "data-renders")
        page.press("#api-key", "Enter")
        page.wait_for_function("n => document.body.dataset.renders !== n", arg=before)
        assert key_error.is_hidden() and page.get_attribute("#api-key", "aria-invalid") is None and shown(page) == hits
        html_hit = page.locator(".hit[data-doc-id=html]")
        assert html_hit.locator(".title").text_content() == MARKUP and html_hit.locator("img, b, script").count() == 0
        page.click(".hit .title")  # no source URL: the title opens the document
        assert page.wait_for_selector(".passage.matched").get_attribute("data-passage-id") == "volcano#0"
        page.keyboard.press("Escape")
        html_hit.locator(".open-doc").click()
        page.wait_for_selector(".passage.matched")
        assert page.text_content(".doc-head h2") == MARKUP and MARKUP in page.text_content(".passage.matched")
        assert page.locator("#doc-view img, #doc-view b, #doc-view script, #injected").count() == 0
        assert page.evaluate("document.body.dataset.owned") is None
    finally:
        context.close()
        srv.stop()


def test_page_assets_are_served_from_the_package(api):
    from ranker.authority import CATEGORIES

    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"] and '<script src="/ui/app.js"' in page.text
    assert api.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    assert api.get("/ui/style.css").headers["content-type"].startswith("text/css")
    assert api.get("/ui/meta.json").json()["categories"] == sorted(CATEGORIES)
    for missing in ("/ui/nothing.js", "/ui/index.txt", "/ui/..%2Fpage.py"):
        r = api.get(missing)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", missing
    assert not any(p == "/" or p.startswith("/ui") for p in api.get("/openapi.json").json()["paths"])


# Chinese documents with characters outside the BMP (emoji, CJK extension B) before and inside their
# passages, and documents whose URL is not a web address.
EMOJI_PARAS = [f"第{i}段😀🎉：今天天气很好，我们去公园散步👍。" + "公园里有很多人在锻炼身体，孩子们在草地上玩耍🏃。" * 3 for i in range(4)]
ZH_DOCS = [
    {"id": "emoji", "title": "表情😀文档", "url": "https://example.cn/emoji", "text": "\n\n".join(EMOJI_PARAS)},
    {"id": "extb", "title": "扩展B", "url": "https://example.cn/extb",
     "text": "𠀀𠀁𠀂字𪚥测试。\n\n" + "公园里的人很多。" * 20 + "\n\n公园最后一段。"},
    {"id": "computer", "title": "量子计算机", "url": "http://example.cn/computer",
     "text": "量子计算机的研究进展很快。许多大学都在研究新的计算机结构。"},
    {"id": "ja", "title": "東京大会", "url": "https://example.jp/olympics",
     "text": "とうきょうでオリンピックがかいさいされた。cellでも。"},
    {"id": "ko", "title": "통화정책", "url": "https://example.kr/rate", "text": "한국은행은 기준금리를 동결했다."},
    {"id": "th", "title": "นโยบายการเงิน", "url": "https://example.th/rate", "text": "คณะกรรมการคงอัตราดอกเบี้ยนโยบายไว้"},
    {"id": "el", "title": "Τιμές", "url": "https://example.gr/prices", "text": "Ο πληθωρισμός στην Αθήνα αυξήθηκε τον Μάιο."},
    {"id": "possessive", "title": "Ratings", "url": "https://example.com/ratings", "text": "Moody's cut the bank's rating."},
    {"id": "astral", "title": "Launch", "url": "https://example.com/launch", "text": "Mission control said the 🚀 lifted off; 𝔘𝔫𝔦𝔳𝔢𝔯𝔰𝔢 was printed on it."},
    {"id": "js-url", "title": "脚本链接", "url": "javascript:document.body.dataset.owned=1", "text": "XSSMARKER javascript scheme"},
    {"id": "data-url", "title": "数据链接", "url": "data:text/html,<b>owned</b>", "text": "XSSMARKER data scheme"},
]


@pytest.fixture(scope="module")
def zh_server(tmp_path_factory) -> Iterator[LiveServer]:
    """A BM25-only server over ZH_DOCS, ~40-character passages."""
    root = build_tiny_index(tmp_path_factory.mktemp("zh-page") / "index", ZH_DOCS, dense=False, chunk_words=40)
    srv = start_server(index=root, threads=1, warmup=False)
    yield srv
    srv.stop()


@pytest.fixture
def zh_page(browser, zh_server: LiveServer):
    yield from new_tab(browser, zh_server)


@pytest.mark.parametrize("doc_id", ["emoji", "extb"])
def test_document_view_cuts_passages_at_the_apis_code_point_offsets(zh_page, zh_server, doc_id):
    """The API's offsets count code points; JavaScript strings count UTF-16 units (two for 😀 or 𠀀)."""
    with zh_server.client() as api:
        doc = api.get(f"/v1/documents/{doc_id}").json()
    assert len(doc["passages"]) >= 3
    open_page(zh_page, f"/?q=公园&doc={doc_id}&pid={doc_id}%232")
    passages = zh_page.eval_on_selector_all(".passage", "ps => ps.map(p => [p.dataset.passageId, p.querySelector('.p-text').textContent])")
    assert passages == [[p["passage_id"], doc["text"][p["start"]:p["end"]]] for p in doc["passages"]]
    assert zh_page.locator(".gap").count() == 0  # nothing but whitespace between passages
    matched = zh_page.locator(".passage.matched")
    assert matched.get_attribute("data-passage-id") == f"{doc_id}#2"
    assert set(matched.locator("mark").all_text_contents()) == {"公园"}


def test_overlapping_chinese_bigrams_are_highlighted_whole(zh_page):
    """计算机's bigrams 计算 and 算机 overlap: the whole word is marked, once."""
    open_page(zh_page)
    for query, marks in [("计算机", ["计算机", "计算机"]), ("量子计算机", ["量子计算机", "计算机"])]:
        search(zh_page, query)
        snippet = zh_page.locator(".hit[data-doc-id=computer] .snippet")
        assert snippet.locator("mark").all_text_contents() == marks, query


def test_a_japanese_word_after_a_particle_is_highlighted(zh_page):
    """Japanese runs its words together: オリンピック after で is marked (the whole katakana word),
    as the snippets match it; a Latin word before a particle is marked without the particle."""
    open_page(zh_page)
    search(zh_page, "オリンピック cell")
    assert zh_page.locator(".hit[data-doc-id=ja] .snippet mark").all_text_contents() == ["オリンピック", "cell"]


@pytest.mark.parametrize("doc_id,query,marks", [("ko", "금리", ["금리"]), ("th", "ดอกเบี้ย", ["ดอกเบี้"])])
def test_a_korean_or_thai_word_inside_a_longer_run_is_highlighted(zh_page, zh_server, doc_id, query, marks):
    """금리 inside 기준금리를, ดอกเบี้ย inside an unspaced Thai phrase: the index finds them there (bigrams),
    the snippets match them there, and the page marks them as the snippets do (a 5-character stem, with
    the vowel and tone marks on its last letter)."""
    with zh_server.client() as api:
        hit = api.post("/v1/search", json={"queries": [query], "k": 3}).json()["results"][0]["hits"][0]
    assert hit["doc_id"] == doc_id
    open_page(zh_page)
    search(zh_page, query)
    assert zh_page.locator(f".hit[data-doc-id={doc_id}] .snippet mark").all_text_contents() == marks


@pytest.mark.parametrize("query,marks", [("🚀", ["🚀"]), ("𝔘𝔫𝔦𝔳𝔢𝔯𝔰𝔢", ["𝔘𝔫𝔦𝔳𝔢𝔯𝔰𝔢"])])
def test_an_emoji_or_a_word_of_letters_outside_the_bmp_is_highlighted(zh_page, query, marks):
    """An emoji is a word of its own to the index and the snippets; a stem of five letters outside the BMP
    was cut after two and a half of them (JavaScript's slice counts UTF-16 units)."""
    open_page(zh_page)
    search(zh_page, query)
    assert zh_page.locator(".hit[data-doc-id=astral] .snippet mark").all_text_contents() == marks


@pytest.mark.parametrize("query", ["ΑΘΗΝΑ", "αθηνα"])
def test_a_greek_word_with_other_accents_is_highlighted(zh_page, zh_server, query):
    """The index folds Greek accents (a query in capitals, or typed without them, finds Αθήνα) and so do
    the snippets: the page marks the word as well."""
    with zh_server.client() as api:
        hit = api.post("/v1/search", json={"queries": [query], "k": 3}).json()["results"][0]["hits"][0]
    assert hit["doc_id"] == "el"
    open_page(zh_page)
    search(zh_page, query)
    assert zh_page.locator(".hit[data-doc-id=el] .snippet mark").all_text_contents() == ["Αθήνα"]


@pytest.mark.parametrize("query", ["Moody's rating", "Moody’s rating"])
def test_a_possessive_in_the_query_marks_the_word_alone(zh_page, query):
    """The index drops the possessive 's, and so do the snippets and the page: the `s` of another
    possessive (bank's) is not marked."""
    open_page(zh_page)
    search(zh_page, query)
    assert zh_page.locator(".hit[data-doc-id=possessive] .snippet mark").all_text_contents() == ["Moody", "rating"]


def test_a_negative_number_is_sent_as_a_number(zh_page, zh_server):
    """k=-1 reaches the API as -1, so the message is the API's range error, not a type error."""
    with zh_server.client() as api:
        message = api.post("/v1/search", json={"queries": ["公园"], "k": -1}).json()["error"]["message"]
    open_page(zh_page, "/?q=公园&k=-1")
    assert zh_page.text_content("#err-k") == message and "integer" not in message


def test_an_unusable_query_line_is_named(zh_page, zh_server):
    """Of several query lines, the one the API rejects (`queries[2]`) is named by its line number."""
    lines = ["公园", "计算机", "!!!", "量子"]
    with zh_server.client() as api:
        error = api.post("/v1/search", json={"queries": lines}).json()["error"]
    assert error["field"] == "queries[2]"
    open_page(zh_page)
    search(zh_page, "\n".join(lines))
    assert zh_page.text_content("#err-queries") == f"Line 3: {error['message']}"
    assert zh_page.get_attribute("#q", "aria-invalid") == "true"


def test_modes_a_bm25_only_index_cannot_serve_are_disabled(zh_page):
    """Without the dense leg, Hybrid and Dense are disabled and marked; clicking one keeps BM25."""
    open_page(zh_page)
    assert zh_page.is_checked("#mode-bm25") and zh_page.is_enabled("#mode-bm25")
    for mode in ("hybrid", "dense"):
        assert zh_page.is_disabled(f"#mode-{mode}")
        assert "dense" in zh_page.get_attribute(f"label[for=mode-{mode}]", "title")
        assert zh_page.eval_on_selector(f"label[for=mode-{mode}]", "e => getComputedStyle(e).cursor") == "not-allowed"
        zh_page.click(f"label[for=mode-{mode}]", force=True)
    search(zh_page, "公园")
    assert zh_page.is_checked("#mode-bm25") and "mode=bm25" in zh_page.url and len(shown(zh_page)) > 0
    assert zh_page.locator("#err-mode").is_hidden()


def test_long_queries_are_kept_out_of_the_address(zh_page):
    """Queries that would make the URL longer than 8 KB (here ~11 KB) stay in the history entry only: the
    address stays short enough to reload, and reload, Back, Forward and the document links keep them."""
    lines = ["公园" * 300, "计算机" * 200]  # 9 URL characters per Han character

    def back_or_forward(go) -> None:
        before = zh_page.get_attribute("body", "data-renders")
        go()
        zh_page.wait_for_function("n => document.body.dataset.renders !== n", arg=before)

    def lists() -> list[str]:
        return zh_page.eval_on_selector_all(".qtext", "qs => qs.map(q => q.textContent)")

    open_page(zh_page)
    search(zh_page, "计算机")
    short_url, short_hits = zh_page.url, shown(zh_page)
    search(zh_page, "\n".join(lines))
    long_hits = shown(zh_page)
    assert lists() == lines and len(long_hits) > len(short_hits)
    assert len(zh_page.url) < 8192 and "q=" not in zh_page.url and "no shareable link" in zh_page.text_content(".summary")
    zh_page.reload()
    zh_page.wait_for_selector("body[data-renders]")
    assert lists() == lines and shown(zh_page) == long_hits and zh_page.input_value("#q") == "\n".join(lines)
    back_or_forward(zh_page.go_back)
    assert zh_page.url == short_url and shown(zh_page) == short_hits
    back_or_forward(zh_page.go_forward)
    assert lists() == lines and shown(zh_page) == long_hits
    zh_page.locator(".open-doc").first.click()  # the document view highlights the first query's words
    assert "公园" in zh_page.wait_for_selector(".passage.matched").eval_on_selector_all("mark", "ms => ms.map(m => m.textContent)")
    zh_page.keyboard.press("Escape")
    zh_page.wait_for_selector(".hit")
    assert lists() == lines and shown(zh_page) == long_hits
    zh_page.focus("a.skip")  # the skip link adds a history entry of its own (#results)
    zh_page.keyboard.press("Enter")
    zh_page.wait_for_url("**#results")
    zh_page.reload()
    zh_page.wait_for_selector("body[data-renders]")
    assert lists() == lines and shown(zh_page) == long_hits


def test_only_web_urls_become_links(zh_page):
    """A javascript: or data: URL from the corpus is shown as text; the title opens the document instead."""
    open_page(zh_page)
    search(zh_page, "XSSMARKER")
    hits = {h["passage_id"].split("#")[0]: h for h in shown(zh_page)}
    assert set(hits) == {"js-url", "data-url"}
    for doc_id in hits:
        assert hits[doc_id]["href"].startswith("/?") and f"doc={doc_id}" in hits[doc_id]["href"]
    search(zh_page, "计算机")
    assert shown(zh_page)[0]["href"] == "http://example.cn/computer"
    open_page(zh_page, "/?q=XSSMARKER&doc=js-url&pid=js-url%230")
    assert "javascript:document.body.dataset.owned=1" in zh_page.text_content(".doc-meta")
    assert zh_page.locator(".doc-meta a").count() == 0
    assert zh_page.locator("a[href^='javascript:' i], a[href^='data:' i]").count() == 0
