// drsearch search page: vanilla JS over the JSON API. The query state lives in the URL, so a result
// list can be shared and reloaded; queries too long for a URL live in the history entry only. Every
// text from the API is inserted as text (textContent / text nodes), never as HTML, so a document
// cannot inject markup.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const WORD = "\\p{L}\\p{M}\\p{N}_"; // Python's \w, as ranker/snippets.py matches query words
  const HAN = "\\u3007\\u3400-\\u4dbf\\u4e00-\\u9fff\\uf900-\\ufaff\\u{20000}-\\u{3134f}"; // indexer/analysis.py HAN
  const W = `(?:(?![${HAN}])[${WORD}])`; // a word character other than Han (Han matches by units)
  const KATAKANA = "\\u30a0-\\u30ff\\u31f0-\\u31ff\\uff66-\\uff9f"; // with half-width katakana
  const KANA = `\\u3040-\\u309f${KATAKANA}`; // indexer/analysis.py KANA
  const HANGUL = "\\uac00-\\ud7a3"; // indexer/analysis.py HANGUL
  // indexer/analysis.py UNSPACED: Thai, Lao, Myanmar and Khmer, written without spaces between words
  const UNSPACED = "\\u0e00-\\u0eff\\u1000-\\u109f\\uaa60-\\uaa7f\\ua9e0-\\ua9ff\\u1780-\\u17ff\\u19e0-\\u19ff";
  // inside a word that spaces delimit (ranker/snippets.py _WORD_CHAR): Japanese runs its words together, and
  // the index finds a Korean or Thai word inside a longer run (by bigrams)
  const IN_WORD = `(?:(?![${HAN}${KANA}${HANGUL}${UNSPACED}])[${WORD}])`;
  const SCALAR_FIELDS = ["min_tier", "max_per_domain", "published_after", "published_before"]; // one value each
  const TEXT_FIELDS = ["include_domains", "exclude_domains", ...SCALAR_FIELDS]; // the filter inputs
  const URL_NAMES = {include_domains: "include", exclude_domains: "exclude", min_tier: "tier", max_per_domain: "cap",
                     published_after: "after", published_before: "before"};
  const MAX_URL = 8000; // characters: servers and proxies commonly refuse a request line past 8 KiB
  const INPUT_FOR_FIELD = {queries: "q", query: "q", k: "k", ...Object.fromEntries(TEXT_FIELDS.map((f) => [f, f])),
                           "X-API-Key": "api-key"};
  let stopwords = new Set();
  let hanStopUnits = new Set(); // Chinese function characters/words (indexer/analysis.py STOP_UNITS)
  let folds = new Map(); // a character -> the one the index folds it to (Greek accents, Arabic letter forms, ı)
  let foldedFrom = new Map(); // a folded character -> it and every character folded to it
  let searchCache = {key: null, data: null};
  let sequence = 0;
  let defaultMode = null; // the index's, from /v1/index
  let shownState = null; // the state of the view on screen
  const linkStates = new WeakMap(); // each data-nav link's state: its href may leave the queries out

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** A RegExp finding the words of `query` the way the server's snippets do: 5-character prefix stems
   * for other scripts, the query's Chinese bigrams (a one-character run as itself) for Han. */
  function matcherFor(query) {
    const stems = new Set();
    // the possessive 's, which the index drops (Moody's is moody), is no word of its own
    const words = (query || "").replace(/(?<=[\p{L}\p{N}_])['’＇][sS](?![\p{L}\p{N}_])/gu, "");
    for (const token of words.match(new RegExp(`${W}+`, "gu")) || []) {
      const word = token.toLowerCase();
      // five characters, not UTF-16 units: a letter outside the BMP (𝔘) is two of those
      if (!stopwords.has(word)) stems.add([...word].map((c) => folds.get(c) || c).slice(0, 5).join(""));
    }
    // an emoji is a word of its own, as the snippets have it
    for (const emoji of (query || "").match(/\p{Extended_Pictographic}/gu) || []) stems.add(emoji);
    const escapeOne = (s) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
    // a folded letter matches each spelling the index folds to it (α: ά, ὰ, ᾶ...), as the snippets do
    const escape = (s) => [...s].map((c) => (foldedFrom.has(c) ? `[${foldedFrom.get(c)}]` : escapeOne(c))).join("");
    // a 5-character stem marks the rest of its word too (a katakana one, the rest of its katakana run)
    const rest = (s) => ([...s].length < 5 ? `(?!${IN_WORD})` : new RegExp(`[${KATAKANA}]$`, "u").test(s) ? `[${KATAKANA}]*` : `${IN_WORD}*`);
    // ... and the marks after it (a Thai vowel above or below its consonant stays with it)
    const alts = [...stems].sort().map((s) => `(?<!${IN_WORD})` + escape(s) + rest(s) + "\\p{M}*");
    const han = new Set();
    for (const run of (query || "").match(new RegExp(`[${HAN}]+`, "gu")) || []) hanUnits([...run]).forEach((u) => han.add(u));
    alts.push(...[...han].sort((a, b) => [...b].length - [...a].length || (a < b ? -1 : 1)).map(escape));
    return alts.length ? new RegExp(alts.join("|"), "giu") : null;
  }

  /** Bigrams of one Han run (array of characters); characters inside a function word make no unit. */
  function hanUnits(chars) {
    if (chars.length === 1) return hanStopUnits.has(chars[0]) ? [] : chars;
    const inside = new Array(chars.length).fill(false);
    const longest = Math.max(0, ...[...hanStopUnits].map((w) => [...w].length));
    for (let i = 0; i < chars.length;) {
      let n = Math.min(longest, chars.length - i);
      while (n > 0 && !hanStopUnits.has(chars.slice(i, i + n).join(""))) n--;
      if (n) { inside.fill(true, i, i + n); i += n; } else i += 1;
    }
    const out = [];
    for (let i = 0; i + 1 < chars.length; i++) if (!(inside[i] && inside[i + 1])) out.push(chars[i] + chars[i + 1]);
    return out;
  }

  /** Text and <mark> nodes: the query words of `text` highlighted. Matches may overlap (the bigrams
   * 计算 and 算机 of 计算机), so a match is looked for at every character; overlapping or touching
   * matches become one <mark>. */
  function highlight(text, re) {
    text = text || "";
    if (!re) return [text];
    const spans = [];
    re.lastIndex = 0;
    for (let m; (m = re.exec(text)) && m[0];) {
      const [start, end] = [m.index, m.index + m[0].length];
      const top = spans[spans.length - 1];
      if (top && start <= top[1]) top[1] = Math.max(top[1], end);
      else spans.push([start, end]);
      re.lastIndex = start + (text.codePointAt(start) > 0xffff ? 2 : 1); // the next character, not past the match
    }
    re.lastIndex = 0;
    const out = [];
    let last = 0;
    for (const [start, end] of spans) {
      if (start > last) out.push(text.slice(last, start));
      out.push(el("mark", {}, text.slice(start, end)));
      last = end;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  /** A function from a code-point offset in `text` (the API's passage offsets: Python string indices)
   * to the UTF-16 index JavaScript's slice needs; they differ after each character outside the BMP
   * (emoji, CJK extension B). */
  function utf16Index(text) {
    if (!/[\ud800-\udfff]/.test(text)) return (k) => k; // the same numbers
    const at = [0];
    for (const ch of text) at.push(at[at.length - 1] + ch.length);
    return (k) => at[Math.min(k, at.length - 1)];
  }

  /** `url` when it is an http(s) URL, the only kind the page makes a link of (never javascript: or data:). */
  function webUrl(url) {
    try {
      return ["http:", "https:"].includes(new URL(url).protocol) ? url : null;
    } catch {
      return null;
    }
  }

  function fmt(value) {
    if (value === null || value === undefined) return "–";
    const v = Number(value);
    return Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3);
  }

  function badge(authority) {
    if (!authority) return el("span", {class: "badge unlisted", title: "Not on the authority list"}, "Unlisted");
    const country = authority.country ? ` (${authority.country.toUpperCase()})` : "";
    return el("span", {class: `badge tier-${authority.tier}`, title: `${authority.name}${country}`},
      el("span", {class: "tier"}, `Tier ${authority.tier}`), " ",
      el("span", {class: "cat"}, authority.category.replace(/_/g, " ")));
  }

  // ------------------------------------------------------------------ API

  async function api(path, options = {}) {
    const headers = {accept: "application/json", ...(options.body ? {"content-type": "application/json"} : {})};
    const key = sessionStorage.getItem("drsearch-api-key");
    if (key && !keyProblem(key)) headers["X-API-Key"] = key; // fetch() would throw on it
    let response;
    try {
      response = await fetch(path, {...options, headers});
    } catch (err) {
      return {ok: false, error: {message: `cannot reach the server: ${err.message}`, field: null}};
    }
    let data = null;
    try { data = await response.json(); } catch { /* a non-JSON body: reported below */ }
    if (response.ok && data) return {ok: true, data};
    const error = (data && data.error) || {message: `HTTP ${response.status}`, field: null};
    return {ok: false, status: response.status, error};
  }

  /** Why `key` cannot go in the X-API-Key header (null: it can): a header value is ISO-8859-1 text. */
  function keyProblem(key) {
    const bad = [...key].find((ch) => !/[\x20-\x7e\xa0-\xff]/.test(ch));
    if (bad === undefined) return null;
    const code = bad.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    return `the key has ${JSON.stringify(bad)} (U+${code}): an HTTP header carries only ISO-8859-1 (Latin-1) characters, so this key was not sent`;
  }

  // ------------------------------------------------------------------ state <-> URL <-> form

  function readState(params = new URLSearchParams(location.search)) {
    const list = (name) => params.getAll(name).flatMap((v) => v.split(",")).map((s) => s.trim()).filter(Boolean);
    const state = {
      queries: params.getAll("q").map((q) => q.trim()).filter(Boolean),
      mode: params.get("mode"), k: params.get("k") || "10",
      include_domains: list("include"), exclude_domains: list("exclude"), categories: list("cat"),
      doc: params.get("doc"), pid: params.get("pid"), hq: Number(params.get("hq") || 0),
    };
    for (const f of SCALAR_FIELDS) state[f] = params.get(URL_NAMES[f]) || "";
    return state;
  }

  /** The address of `state`, without its queries when they would make it longer than MAX_URL (a
   * request that long fails to reload); history.state still holds them. */
  function urlFor(state) {
    const full = fullUrl(state);
    if (full.length <= MAX_URL) return full;
    const short = fullUrl({...state, queries: []});
    return short.length <= MAX_URL ? short : location.pathname;
  }

  function fullUrl(state) {
    const p = new URLSearchParams();
    state.queries.forEach((q) => p.append("q", q));
    if (state.mode) p.set("mode", state.mode);
    if (state.k && state.k !== "10") p.set("k", state.k);
    for (const f of ["include_domains", "exclude_domains"]) if (state[f].length) p.set(URL_NAMES[f], state[f].join(","));
    for (const f of SCALAR_FIELDS) if (state[f]) p.set(URL_NAMES[f], state[f]);
    if (state.categories.length) p.set("cat", state.categories.join(","));
    if (state.doc) {
      p.set("doc", state.doc);
      if (state.pid) p.set("pid", state.pid);
      if (state.hq) p.set("hq", String(state.hq));
    }
    const qs = p.toString();
    return qs ? `${location.pathname}?${qs}` : location.pathname;
  }

  function formState() {
    const split = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
    const mode = document.querySelector("input[name=mode]:checked");
    const state = {
      queries: $("q").value.split("\n").map((q) => q.trim()).filter(Boolean),
      mode: mode ? mode.value : null, k: $("k").value.trim() || "10",
      include_domains: split($("include_domains").value), exclude_domains: split($("exclude_domains").value),
      categories: [...document.querySelectorAll("#categories input:checked")].map((c) => c.value),
      doc: null, pid: null, hq: 0,
    };
    for (const f of SCALAR_FIELDS) state[f] = $(f).value.trim();
    return state;
  }

  function fillForm(state) {
    $("q").value = state.queries.join("\n");
    const mode = state.mode || defaultMode;
    const radio = mode && document.querySelector(`input[name=mode][value="${CSS.escape(mode)}"]`);
    if (radio) radio.checked = true;
    $("k").value = state.k;
    $("include_domains").value = state.include_domains.join(", ");
    $("exclude_domains").value = state.exclude_domains.join(", ");
    for (const f of SCALAR_FIELDS) $(f).value = state[f];
    for (const box of document.querySelectorAll("#categories input")) box.checked = state.categories.includes(box.value);
    const active = state.include_domains.length + state.exclude_domains.length + state.categories.length +
      SCALAR_FIELDS.filter((f) => state[f]).length;
    $("filter-count").hidden = !active;
    $("filter-count").textContent = active ? `${active} active` : "";
  }

  /** A link the page follows itself (to `state`), not by loading its href. */
  function navLink(attrs, state, ...children) {
    const link = el("a", {...attrs, href: urlFor(state), "data-nav": true}, ...children);
    linkStates.set(link, state);
    return link;
  }

  function requestBody(state) {
    const num = (v) => (/^-?\d+$/.test(v) ? Number(v) : v); // anything else goes as typed: the API names the field
    const body = {queries: state.queries, k: num(state.k)};
    if (state.mode) body.mode = state.mode;
    for (const f of ["include_domains", "exclude_domains", "categories"]) if (state[f].length) body[f] = state[f];
    for (const f of ["min_tier", "max_per_domain"]) if (state[f]) body[f] = num(state[f]);
    for (const f of ["published_after", "published_before"]) if (state[f]) body[f] = state[f];
    return body;
  }

  // ------------------------------------------------------------------ errors next to their field

  function clearErrors() {
    for (const node of document.querySelectorAll(".field-error")) { node.hidden = true; node.textContent = ""; }
    for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  function showError(error) {
    const base = (error.field || "").split(/[.[]/)[0];
    const slot = (base && $(`err-${base === "query" ? "queries" : base}`)) || $("err-form");
    const line = /^queries\[(\d+)\]/.exec(error.field || ""); // the box holds the queries one per line, in order
    slot.textContent = line ? `Line ${Number(line[1]) + 1}: ${error.message}` : error.message;
    slot.hidden = false;
    const input = $(INPUT_FOR_FIELD[base] || "");
    if (input) input.setAttribute("aria-invalid", "true");
    if (base === "X-API-Key") $("index-panel").open = true;
    if ([...TEXT_FIELDS, "categories"].includes(base)) $("filters").open = true;
  }

  // ------------------------------------------------------------------ results

  function renderHit(hit, re, state, qi) {
    const docState = {...state, doc: hit.doc_id, pid: hit.passage_id, hq: qi};
    const title = webUrl(hit.url)
      ? el("a", {class: "title", href: hit.url, target: "_blank", rel: "noopener noreferrer"}, hit.title || hit.url)
      : navLink({class: "title"}, docState, hit.title || hit.doc_id);
    const ranks = hit.ranks || {};
    const score = (label, value, rank, cls) => el("div", {class: `score ${cls}`},
      el("dt", {}, label), el("dd", {}, fmt(value), rank ? el("span", {class: "leg-rank"}, ` #${rank}`) : null));
    return el("li", {class: "hit", "data-passage-id": hit.passage_id, "data-doc-id": hit.doc_id},
      el("div", {class: "hit-head"}, el("span", {class: "rank"}, String(hit.rank)), title),
      el("div", {class: "hit-meta"},
        hit.domain ? el("span", {class: "domain"}, hit.domain) : el("span", {class: "domain none"}, hit.doc_id),
        badge(hit.authority),
        hit.published ? el("time", {class: "date", datetime: hit.published}, hit.published) : null),
      el("p", {class: "snippet"}, highlight(hit.snippet, re)),
      el("div", {class: "hit-foot"},
        el("dl", {class: "scores", "aria-label": "score breakdown"},
          score("BM25", hit.scores.bm25, ranks.bm25, "bm25"), score("Dense", hit.scores.dense, ranks.dense, "dense"),
          score("Fused", hit.scores.fused, null, "fused"), score("Authority", hit.scores.authority, null, "authority"),
          score("Final", hit.scores.final, null, "final")),
        navLink({class: "open-doc"}, docState, "Open in document →")));
  }

  function renderResults(data, state) {
    const lists = data.results.map((res, qi) => {
      const re = matcherFor(res.query);
      const count = `${res.hits.length} result${res.hits.length === 1 ? "" : "s"}`;
      return el("section", {class: "query-result", "aria-labelledby": `qh-${qi}`},
        el("h2", {id: `qh-${qi}`}, el("span", {class: "qtext"}, res.query), el("span", {class: "count"}, count)),
        res.hits.length
          ? el("ol", {class: "hits"}, res.hits.map((hit) => renderHit(hit, re, state, qi)))
          : el("p", {class: "empty"}, "No passage matches these filters."));
    });
    const summary = el("p", {class: "summary"},
      `${data.results.length} quer${data.results.length === 1 ? "y" : "ies"} · ${data.mode} · ${data.took_ms.toFixed(0)} ms`,
      data.cached ? " · cached" : "", " · index ", el("code", {}, data.index_version),
      urlFor(state) === fullUrl(state) ? "" : " · queries too long for the address: no shareable link");
    $("results").classList.toggle("multi", data.results.length > 1);
    $("results").replaceChildren(summary, el("div", {class: "query-lists"}, lists));
  }

  async function showResults(state) {
    const seq = ++sequence;
    $("doc-view").hidden = true;
    $("results").hidden = false;
    document.title = state.queries.length ? `${state.queries.join(" · ")} – drsearch` : "drsearch";
    if (!state.queries.length) {
      $("results").replaceChildren(el("p", {class: "hint"},
        "Type a query and press Enter. Results show each source's authority and why it ranked where it did."));
      return;
    }
    const key = JSON.stringify(requestBody(state));
    let data = searchCache.key === key ? searchCache.data : null;
    if (!data) {
      $("results").setAttribute("aria-busy", "true");
      const r = await api("/v1/search", {method: "POST", body: key});
      if (seq !== sequence) return; // a newer search or view took over
      $("results").removeAttribute("aria-busy");
      if (!r.ok) {
        showError(r.error);
        $("results").replaceChildren(el("p", {class: "hint error"}, "The search was not run: see the message by the field."));
        return;
      }
      data = r.data;
      searchCache = {key, data};
    }
    renderResults(data, state);
  }

  // ------------------------------------------------------------------ document view

  function metaRow(label, ...value) {
    return [el("dt", {}, label), el("dd", {}, ...value)];
  }

  async function showDoc(state) {
    const seq = ++sequence;
    const view = $("doc-view");
    const back = navLink({class: "back"}, {...state, doc: null, pid: null, hq: 0},
      state.queries.length ? "← Back to results" : "← Search");
    $("results").hidden = true;
    view.hidden = false;
    view.replaceChildren(back, el("p", {class: "hint"}, "Loading document…"));
    const r = await api(`/v1/documents/${encodeURIComponent(state.doc)}`);
    if (seq !== sequence) return;
    if (!r.ok) {
      view.replaceChildren(back, el("p", {class: "field-error"}, r.error.message));
      return;
    }
    const doc = r.data;
    document.title = `${doc.title || doc.doc_id} – drsearch`;
    const re = matcherFor(state.queries[state.hq] || state.queries[0] || "");
    const u = utf16Index(doc.text);
    const text = (start, end) => doc.text.slice(u(start), end === undefined ? undefined : u(end));
    const parts = [];
    let pos = 0;
    for (const p of doc.passages) {
      if (p.start > pos && text(pos, p.start).trim()) parts.push(el("div", {class: "gap"}, text(pos, p.start)));
      const isHit = p.passage_id === state.pid;
      parts.push(el("section", {class: isHit ? "passage matched" : "passage", id: `passage-${p.ordinal}`,
                                "data-passage-id": p.passage_id, "aria-current": isHit ? "true" : null, tabindex: isHit ? "-1" : null},
        el("span", {class: "p-label"}, `¶ ${p.ordinal}`, isHit ? el("span", {class: "p-match"}, "matched passage") : null),
        el("div", {class: "p-text"}, highlight(text(p.start, p.end), re))));
      pos = Math.max(pos, p.end);
    }
    if (text(pos).trim()) parts.push(el("div", {class: "gap"}, text(pos)));
    const extra = Object.entries(doc.metadata || {}).flatMap(([k, v]) =>
      metaRow(k, typeof v === "string" ? v : JSON.stringify(v)));
    view.replaceChildren(back,
      el("header", {class: "doc-head"},
        el("h2", {}, doc.title || doc.doc_id),
        el("dl", {class: "doc-meta"},
          metaRow("Source", webUrl(doc.url) ? el("a", {href: doc.url, target: "_blank", rel: "noopener noreferrer"}, doc.url)
                                            : doc.url || "–"),
          metaRow("Domain", doc.domain || "–", " ", badge(doc.authority)),
          metaRow("Published", doc.published || "–"),
          metaRow("Document id", el("code", {}, doc.doc_id)),
          metaRow("Passages", String(doc.passages.length)),
          doc.source ? metaRow("Read from", doc.source) : [],
          extra,
          metaRow("Index version", el("code", {}, doc.index_version)))),
      el("div", {class: "doc-text"}, parts));
    const hit = view.querySelector(".passage.matched");
    if (hit) {
      hit.scrollIntoView({block: "center"});
      hit.focus({preventScroll: true});
    } else {
      view.focus({preventScroll: true});
    }
  }

  // ------------------------------------------------------------------ index and health panel

  async function loadIndex() {
    const [ready, info] = await Promise.all([api("/readyz"), api("/v1/index")]);
    $("ix-dot").className = ready.ok ? "dot ok" : "dot bad";
    $("ix-status").textContent = ready.ok ? "ready" : ready.error.message;
    if (!info.ok) {
      $("ix-summary").textContent = `Index unavailable: ${info.error.message}`;
      return;
    }
    const ix = info.data;
    const counts = (ix.manifest && ix.manifest.counts) || {};
    const n = (v) => (v === undefined ? "–" : Number(v).toLocaleString("en"));
    $("ix-version").textContent = ix.version;
    $("ix-documents").textContent = n(counts.documents);
    $("ix-passages").textContent = n(counts.passages);
    $("ix-mode").textContent = ix.default_mode + (ix.has_dense ? "" : " (no dense leg)");
    const hash = (ix.authority && ix.authority.content_hash) || "";
    $("ix-authority").replaceChildren(el("code", {title: hash}, hash.slice(0, 12) || "–"),
      ` · ${n(ix.authority && ix.authority.entries)} entries`);
    $("ix-loaded").textContent = ix.loaded_at;
    $("ix-summary").textContent = `${n(counts.passages)} passages · ${ix.default_mode}`;
    defaultMode = ix.default_mode;
    offerModes(ix.has_dense);
    const mode = document.querySelector("input[name=mode]:checked");
    if (!mode || mode.disabled) $(`mode-${ix.default_mode}`).checked = true;
  }

  /** Hybrid and dense need the index's dense leg: without it they are disabled, and their labels say why. */
  function offerModes(hasDense) {
    for (const mode of ["hybrid", "dense"]) {
      $(`mode-${mode}`).disabled = !hasDense;
      document.querySelector(`label[for=mode-${mode}]`).title = hasDense ? "" : "not available: this index has no dense leg";
    }
  }

  async function loadMeta() {
    const r = await api("/ui/meta.json");
    if (!r.ok) return;
    stopwords = new Set(r.data.stopwords);
    hanStopUnits = new Set(r.data.han_stop_units || []);
    folds = new Map(Object.entries(r.data.folds || {}));
    foldedFrom = new Map();
    for (const [from, to] of folds) foldedFrom.set(to, (foldedFrom.get(to) || to) + from);
    $("categories").replaceChildren(...r.data.categories.map((c) =>
      el("label", {class: "check"}, el("input", {type: "checkbox", value: c}), c.replace(/_/g, " "))));
  }

  // ------------------------------------------------------------------ navigation

  let renders = 0;

  /** Show what the history entry's state (else the URL) says; `data-renders` on <body> counts finished
   * views (tests wait on it). */
  async function route() {
    clearErrors();
    $("results").removeAttribute("aria-busy"); // a search this view overtook set it and won't clear it
    const state = history.state || readState();
    shownState = state;
    fillForm(state);
    await (state.doc ? showDoc(state) : showResults(state));
    document.body.dataset.renders = String(++renders);
  }

  function navigate(state) {
    history.pushState(state, "", urlFor(state));
    route();
  }

  function wire() {
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const state = formState();
      if (!state.queries.length) {
        clearErrors();
        showError({field: "queries", message: "type at least one query"});
        $("q").focus();
        return;
      }
      navigate(state);
    });
    $("q").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("search-form").requestSubmit();
      }
    });
    $("clear-filters").addEventListener("click", () => {
      for (const f of TEXT_FIELDS) $(f).value = "";
      for (const box of document.querySelectorAll("#categories input")) box.checked = false;
      $("search-form").requestSubmit();
    });
    $("api-key").value = sessionStorage.getItem("drsearch-api-key") || "";
    const applyKey = () => {
      const key = $("api-key").value.trim();
      const problem = keyProblem(key);
      if (problem) {
        showError({field: "X-API-Key", message: problem});
        return;
      }
      // an unchanged key is applied again while it is marked wrong: the user is retrying it
      if (key === (sessionStorage.getItem("drsearch-api-key") || "") && !$("api-key").hasAttribute("aria-invalid")) return;
      sessionStorage.setItem("drsearch-api-key", key);
      searchCache = {key: null, data: null};
      loadIndex();
      route();
    };
    $("api-key").addEventListener("change", applyKey);
    $("api-key").addEventListener("keydown", (event) => { if (event.key === "Enter") applyKey(); });
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-nav]");
      if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(linkStates.get(link));
    });
    document.addEventListener("keydown", (event) => {
      const typing = event.target.matches?.("textarea, select, input:not([type=radio]):not([type=checkbox])");
      if (event.key === "/" && !typing) { event.preventDefault(); $("q").focus(); }
      if (event.key === "Escape" && !$("doc-view").hidden) { const back = $("doc-view").querySelector("a.back"); if (back) back.click(); }
    });
    window.addEventListener("popstate", () => {
      // only a fragment link (#results) makes an entry without a state: it keeps the view, whose queries its URL may lack
      if (!history.state) history.replaceState(shownState, "");
      else route();
    });
  }

  async function start() {
    if (!history.state) history.replaceState(readState(), ""); // the entry it was opened at
    wire();
    await Promise.all([loadMeta(), loadIndex()]);
    await route();
  }

  start();
})();
