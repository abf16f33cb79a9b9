"""Language of documents and queries: ISO 639-1 codes ("en", "zh", ...), "und" when unknown.

Scripts decide first (Han without kana is Chinese, kana Japanese, Hangul Korean): that is exact
and works on a two-character query. Other text goes to py3langid, which needs some length to be
right on Latin script, so a short Latin-script text is taken as English, the library's default.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

from indexer.analysis import HAN
from indexer.query_cache import query_cache

UNKNOWN = "und"
_HAN = re.compile(f"[{HAN}]")
# Kana, less the katakana middle dot and prolonged sound mark (U+30FB, U+30FC): Chinese writes them
# too, between the parts of a transliterated name (哈利・波特), so they are no evidence of Japanese.
_KANA = re.compile("[\u3040-\u30fa\u30fd-\u30ff\u31f0-\u31ff]")
_SHARED_MARKS = re.compile("[\u30fb\u30fc]")
_HANGUL = re.compile("[\uac00-\ud7af\u1100-\u11ff]")
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")
MIN_LANGID_LETTERS = 40  # below this py3langid guesses; the crawler uses the same floor
SAMPLE_CHARS = 1000  # plenty for py3langid; the classifier costs ~0.4 ms per 1,000 characters, per document at build time


@lru_cache(maxsize=1)
def identifier():  # type: ignore[no-untyped-def]
    """py3langid's identifier with probabilities normalised to [0, 1] (loaded once, on first use),
    walking its automaton over a packed table (`_packed_identifier`): the same scores, bit for bit."""
    from py3langid.langid import MODEL_FILE

    return _packed_identifier().from_model_file(MODEL_FILE, norm_probs=True)


def _packed_identifier() -> type:
    """py3langid's `LanguageIdentifier` with its byte automaton's per-state row offset and feature
    kept in one array of machine integers instead of two lists of int objects: a walk reads two
    places in memory per byte instead of five. A query's language is detected right after the
    previous query's encoding has flushed the caches, where that took a query's walk from
    ~150 to ~115 µs (docs/BENCHMARKS.md, issue 14). Everything else is the library's."""
    from array import array
    from collections import Counter

    from py3langid.langid import LanguageIdentifier

    class PackedIdentifier(LanguageIdentifier):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            if len(self.nb_ptc) >= 1 << _FEATURE_BITS:
                raise ValueError(f"py3langid model with {len(self.nb_ptc)} features: more than the packed table holds")
            # feature + 1 (0: none) in the low bits, the state's row offset above them
            self._packed = array("q", [(row << _FEATURE_BITS) | (feature + 1)
                                       for row, feature in zip(self._rowbase, self.tk_output)])  # fmt: skip

        def _raw_score(self, text):  # type: ignore[no-untyped-def]
            nextmove, packed, mask = self.tk_nextmove, self._packed, (1 << _FEATURE_BITS) - 1
            row, found = packed[0] >> _FEATURE_BITS, []  # the start state's row
            for byte in text:  # `visit_counts`, state by state
                entry = packed[nextmove[row + byte]]
                row = entry >> _FEATURE_BITS
                if entry & mask:
                    found.append((entry & mask) - 1)
            if not found:
                return super()._raw_score(text)
            return self._sparse_score(Counter(found), self.nb_ptc)

    return PackedIdentifier


_FEATURE_BITS = 24  # py3langid 0.4.0's model has ~100,000 features


def _ascii_letters(text: str) -> int:
    """How many letters an ASCII text has (what `_LETTER` finds in it), without a regex pass."""
    data = text.encode("ascii")
    return len(data) - len(data.translate(None, _ASCII_LETTER_BYTES))


_ASCII_LETTER_BYTES = string.ascii_letters.encode("ascii")


def _cjk(text: str) -> str | None:
    """The CJK language of `text` when CJK characters are at least a fifth of its letters."""
    letters = len(_LETTER.findall(text))
    if not letters:
        return None
    han, kana, hangul = len(_HAN.findall(text)), len(_KANA.findall(text)), len(_HANGUL.findall(text))
    if (han + kana + hangul + len(_SHARED_MARKS.findall(text))) * 5 < letters:
        return None
    if hangul > han + kana:
        return "ko"
    return "ja" if kana * 10 >= han + kana and kana else "zh"


def script_language(text: str) -> str | None:
    """The language a text's script names exactly (Chinese, Japanese, Korean), else None."""
    sample = text[:SAMPLE_CHARS]
    return None if sample.isascii() else _cjk(sample)


def mostly_latin(text: str) -> bool:
    """Whether at least half of a text's letters are Latin ones (True for a text without letters)."""
    sample = text[:SAMPLE_CHARS]
    if sample.isascii():
        return True
    return 2 * len(_LATIN.findall(sample)) >= len(_LETTER.findall(sample))


def _without_cjk(text: str) -> str:
    return _HAN.sub(" ", _KANA.sub(" ", _HANGUL.sub(" ", _SHARED_MARKS.sub(" ", text))))


def detect(text: str) -> str:
    """The main language of a document's text."""
    sample = text[:SAMPLE_CHARS]
    if sample.isascii():  # no CJK, every letter Latin: what the regex passes below would find, faster
        letters = latin = _ascii_letters(sample)
    else:
        cjk = _cjk(sample)
        if cjk:
            return cjk
        sample = _without_cjk(sample)  # a few quoted Chinese names would only confuse the classifier
        letters, latin = len(_LETTER.findall(sample)), len(_LATIN.findall(sample))
    if letters == 0:
        return UNKNOWN
    if letters < MIN_LANGID_LETTERS and latin * 2 > letters:
        return "en"
    lang, prob = identifier().classify(sample)
    return (normalise(str(lang)) or UNKNOWN) if prob >= 0.5 else UNKNOWN  # a few of its codes are ISO 639-3 ("kik")


@query_cache(maxsize=4096)
def query_languages(text: str) -> tuple[str, ...]:
    """Every language a query is written in, e.g. ("en", "zh") for `RCEP 成员国`, in a fixed order."""
    if text.isascii():  # one script, no CJK: what the steps below give, without their regex passes
        lang = detect(text)
        return () if lang == UNKNOWN else (lang,)
    found: set[str] = set()
    cjk_chars = _HAN.findall(text) + _KANA.findall(text) + _HANGUL.findall(text)
    if cjk_chars:
        found.add(_cjk("".join(cjk_chars)) or "zh")
    rest = _without_cjk(text)
    if _LETTER.search(rest):
        lang = detect(rest)
        if lang == UNKNOWN and not mostly_latin(rest):  # no English at least: py3langid's best guess, however unsure
            lang = normalise(str(identifier().classify(rest)[0])) or UNKNOWN
        found.add(lang)
    found.discard(UNKNOWN)
    return tuple(sorted(found))


def normalise(code: object) -> str | None:
    """ISO 639-1 code of a language tag's primary subtag ("zh-CN" -> "zh", "EN_us" -> "en", "zho" and
    "chi" -> "zh"); a three-letter code of a language 639-1 lacks stays as it is ("haw"); None if not a code."""
    if not isinstance(code, str):
        return None
    primary = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    if not re.fullmatch(r"[a-z]{2,3}", primary):
        return None
    return _iso639_1().get(primary, primary)


def language_code(code: object) -> str | None:
    """`normalise(code)` when the tag's primary subtag is an ISO 639-1 or 639-2/639-3 code of a language
    ("en", "zh-CN", "zho", "haw", "yue") or one of 639-2's special codes (und, mul, zxx); None for
    anything else ("english", "xx", "jp"). The codes are CLDR's (Babel), plus the few 639-3 codes the
    language detector assigns that CLDR lacks, so that every code a build stores can be asked for."""
    norm = normalise(code)
    if norm is None:
        return None
    primary = re.split(r"[-_]", str(code).strip().lower(), maxsplit=1)[0]
    if primary in _iso639_codes() or primary in _detected_codes():
        return norm
    return None


@lru_cache(maxsize=1)
def _iso639_codes() -> frozenset[str]:
    """Every language code CLDR knows: the languages it names (ISO 639-1 where there is one, else
    639-2/639-3, with und, mul and zxx) and the other codes it maps to one of them ("zho", "cmn", "iw")."""
    from babel import Locale
    from babel.core import get_global

    codes = set(Locale("en").languages) | set(get_global("language_aliases"))
    return frozenset(c for c in codes if re.fullmatch(r"[a-z]{2,3}", c))


def _detected_codes() -> frozenset[str]:
    """The codes py3langid can assign (loaded only when a code is not CLDR's: few are, e.g. "hbo")."""
    return frozenset(str(c) for c in identifier().nb_classes)


@lru_cache(maxsize=1)
def _iso639_1() -> dict[str, str]:
    """Other code -> ISO 639-1 code of the same language, from CLDR's language aliases (Babel): the
    ISO 639-2/T and /B codes ("zho", "chi"), 639-3 ones ("cmn") and 639-1's withdrawn codes ("iw")."""
    from babel.core import get_global

    aliases: dict[str, str] = get_global("language_aliases")
    # CLDR prefers a few longer codes to 639-1's ("tl" -> "fil"): their other codes ("tgl") go to 639-1's
    two_letter_of = {target: code for code, target in aliases.items() if len(code) == 2 and len(target) != 2}
    table = {}
    for code, target in aliases.items():
        two = target if re.fullmatch(r"[a-z]{2}", target) else two_letter_of.get(target)
        if two:
            table[code] = two
    return table


# ISO 639-2's codes that name no one language: undetermined, multiple, no linguistic content
_NOT_A_LANGUAGE = frozenset({"und", "mul", "zxx"})


def document_language(language: str | None, title: str, text: str) -> str:
    """A document's own language field when it names one language, else the language detected in its
    text (also for `und`, `mul` and `zxx`, which say the language is unknown or not one, and for a
    field that is no language code at all, such as the country codes "cn" or "jp", which no language
    filter could ask for)."""
    given = language_code(language) if language else None
    if given in _NOT_A_LANGUAGE:
        given = None
    return given or detect(f"{title}\n{text}" if title else text)


ANY = "*"  # a dense model that covers every language
_CARD_LANGUAGE = re.compile(r"^language:\s*(?:\[(?P<inline>[^\]]*)\]|(?P<one>\S+))?\s*$", re.M)
_CARD_ITEM = re.compile(r"^\s*-\s*(\S+)\s*$")


def model_languages(model_dir: str | None) -> list[str]:
    """Languages a sentence-transformers model covers: its model card's `language:` list (README.md
    front matter); the bundled all-MiniLM-L6-v2 covers English; a model without a card, any language."""
    if model_dir is None:
        return ["en"]
    from pathlib import Path

    try:
        card = (Path(model_dir) / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [ANY]
    front = card.split("---", 2)[1] if card.startswith("---") and card.count("---") >= 2 else ""
    m = _CARD_LANGUAGE.search(front)
    if not m:
        return [ANY]
    if m.group("inline") is not None:
        items = [s.strip(" '\"") for s in m.group("inline").split(",")]
    elif m.group("one"):
        items = [m.group("one").strip("'\"")]
    else:  # a YAML block list on the following lines
        items = []
        for line in front[m.end():].splitlines()[1:]:
            item = _CARD_ITEM.match(line)
            if not item:
                break
            items.append(item.group(1).strip("'\""))
    codes = sorted({c for c in map(normalise, items) if c})
    if "multilingual" in (i.lower() for i in items):
        return [ANY]
    return codes or [ANY]


def covered(languages: tuple[str, ...], model: list[str] | tuple[str, ...]) -> bool:
    """Whether a dense model covering `model` languages can embed a text in `languages`."""
    return ANY in model or all(lang in model for lang in languages)


def dense_languages(given: list[str] | None, model_dir: str | None) -> list[str]:
    """The dense model's languages as recorded in the manifest: `given` (--dense-languages) or the model's."""
    if not given:
        return model_languages(model_dir)
    out = []
    for code in given:
        norm = ANY if code.strip() == ANY else language_code(code)
        if norm is None:
            from indexer.errors import ConfigError

            raise ConfigError(f"not a language code: {code!r} (expected ISO 639-1 or 639-3 such as en, zh, haw, or *)",
                              field="--dense-languages")
        out.append(norm)
    return sorted(set(out))
