"""Text normalisation, word tokenisation and the stop-word policy shared by c-TF-IDF and the keyphrase extractor.

Every word a SID is made of comes from `WordAnalyzer` (a private module; the user-facing rules are in `SIDConfig`):

1. `normalize_text`: Unicode NFKC (full-width forms, ligatures, superscripts, no-break spaces), typographic
   apostrophes, quotes and dashes mapped to ASCII (``woman’s`` -> ``woman's``, ``o’clock`` -> ``o'clock``), invisible
   characters dropped, case-folded, and diacritics removed from Latin letters only (``café`` -> ``cafe``). Marks of
   other scripts are part of their letters and kept (Devanagari vowel signs, Cyrillic ``й``, Arabic harakat).
2. `tokenize`: a word is a run of letters, digits and combining marks of any script, optionally joined by inner
   ``'`` or ``-`` (``o'clock``, ``t-shirt``). Chinese and Japanese are written without spaces, so (as BERT's basic
   tokenizer does) every Han ideograph and every hiragana is a word of its own; a run of katakana is one word
   (mostly loanwords and names: ``コーヒー``). Other scripts written without spaces (Thai, Lao, Khmer, Myanmar)
   need pre-segmented text (words separated by spaces). ``|``, ``,`` and spaces never occur inside a word.
3. stop words are removed, unless a text has nothing else: a text made only of stop words keeps its own words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "first second third fourth fifth sixth seventh eighth ninth tenth last next both".split()
)
# sklearn's list also deletes words that tell two captions apart ("dog behind the fence" vs "dog in front of the
# fence", "fire hydrant", "empty street", "a few birds"): we keep spatial, quantity and plain content words.
DISCRIMINATIVE_WORDS = frozenset(
    "above below behind beside between beyond under over up down top bottom front back side inside outside "
    "across along around through toward towards onto off out together alone empty full thick thin few many several "
    "fire bill mill system interest call cry describe detail fill find move name part show take give keep put".split()
)
# Words that negate, restrict or flip the words next to them: removing one maps a text onto its opposite ("no
# parking" -> "parking", "not available" -> "available", "cup without handle" -> "cup handle", "staff only" ->
# "staff", "lamp on" -> "lamp" while "lamp off" keeps "off"). Negators and their apostrophe-less contractions, the
# exception words, the on/off and done states, the restrictive "only" and the comparatives (as "few"/"many" are
# kept). They are rare in captions except "on", which is as much a spatial relation as the kept "under" and "above".
POLARITY_WORDS = frozenset(
    "no not nor none never nothing nobody noone neither nowhere cannot cant couldnt hasnt un without except "
    "on off done only more less most least".split()
)
SEMCORE_STOP_WORDS = frozenset(ENGLISH_STOP_WORDS - NUMBER_WORDS - DISCRIMINATIVE_WORDS - POLARITY_WORDS)

_APOSTROPHES = "\u2018\u2019\u201a\u201b\u2032\u02bc\u02b9\u00b4`"  # ‘ ’ ‚ ‛ ′ ʼ ʹ ´ `
_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\u2039\u203a"  # “ ” „ ‟ ″ « » ‹ ›
_HYPHENS = "\u2010\u2011\u2012\u2013\u2212"  # hyphen, non-breaking hyphen, figure dash, en dash, minus sign
_DASHES = "\u2014\u2015\u2e3a\u2e3b"  # em dash, horizontal bar, two- and three-em dashes: clause breaks
# Invisible characters that only split (or pad) words: soft hyphen, zero-width space, word joiner, BOM, Arabic tatweel
# (elongation), variation selectors. ZWNJ / ZWJ stay: inside Persian and Indic words they are part of the spelling.
_INVISIBLE = "\u00ad\u200b\u2060\ufeff\u0640" + "".join(map(chr, range(0xFE00, 0xFE10)))
_TRANSLATION = str.maketrans(
    {
        **dict.fromkeys(_APOSTROPHES, "'"),
        **dict.fromkeys(_QUOTES, '"'),
        **dict.fromkeys(_HYPHENS, "-"),
        **dict.fromkeys(_DASHES, "--"),  # never a word joiner: "dog—cat" -> "dog--cat" -> dog, cat
        **dict.fromkeys(_INVISIBLE, ""),
        **{cp: "" for cp in range(0xE0100, 0xE01F0)},
    }
)
# Generic combining diacritics (not the marks of a script's own block), removed only after a Latin letter.
_LATIN_DIACRITICS = re.compile(
    "(?<=[A-Za-z\u00c0-\u024f\u1e00-\u1eff])[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+"
)
# Han ideographs (unified, extensions, compatibility), hiragana and the ideographic iteration / closing / zero marks.
_CJK_CHAR = re.compile("[\u3005-\u3007\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")


def normalize_text(text: str) -> str:
    """Normalise a text before it is split into words (see the module docstring, step 1).

    Args:
        text (`str`): any text.

    Returns:
        `str`: the NFKC, ASCII-punctuation, case-folded form, with Latin diacritics removed.

    Example:

    ```python
    >>> normalize_text("A Woman’s Café — at three o’clock")
    "a woman's cafe -- at three o'clock"
    ```
    """
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATION).casefold()
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", _LATIN_DIACRITICS.sub("", unicodedata.normalize("NFD", text)))


@functools.cache
def _word_regex() -> re.Pattern:
    # Python's `\w` covers letters and digits of every script but not combining marks (Mn, Mc, Me), without which
    # Indic, Arabic or Hebrew words fall apart ("हिन्दी" -> "ह", "न", "द"); the mark ranges are read from the Unicode
    # database once (marks live below U+20000; the variation selectors above it are dropped by `normalize_text`).
    ranges, start, prev = [], None, None
    for cp in range(0x300, 0x20000):
        if unicodedata.category(chr(cp))[0] == "M":
            if start is None or cp != prev + 1:
                if start is not None:
                    ranges.append((start, prev))
                start = cp
            prev = cp
    ranges.append((start, prev))
    marks = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" if a != b else re.escape(chr(a)) for a, b in ranges)
    inner = rf"[\w{marks}\u200c\u200d]"  # letters, digits, marks, ZWNJ, ZWJ
    return re.compile(rf"\w{inner}*(?:['-]\w{inner}*)*")


def tokenize(normalized: str) -> list[str]:
    """Split a `normalize_text` output into words (see the module docstring, step 2).

    Args:
        normalized (`str`): a normalised text.

    Returns:
        `list[str]`: the words, in order; none contains whitespace, ``|`` or ``,``.
    """
    # "_" is a word character for `\w` but a separator for us; CJK characters become words of their own.
    return _word_regex().findall(_CJK_CHAR.sub(r" \g<0> ", normalized.replace("_", " ")))


def words_of(text: str) -> list[str]:
    """`tokenize(normalize_text(text))`: the SID vocabulary's words of `text`, stop words included."""
    return tokenize(normalize_text(text))


class WordAnalyzer:
    """The `CountVectorizer` analyzer of SID building: normalise, tokenise, drop stop words, make n-grams.

    A text made only of stop words keeps its own words, so it never becomes empty.

    Args:
        stop_words (`frozenset[str]`): normalised stop words.
        ngram_range (`tuple[int, int]`, defaults to `(1, 1)`): min and max n-gram length.
    """

    def __init__(self, stop_words: frozenset[str] = frozenset(), ngram_range: tuple[int, int] = (1, 1)):
        self.stop_words = frozenset(stop_words)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))

    def __call__(self, text: str) -> list[str]:
        tokens = words_of(text)
        kept = [t for t in tokens if t not in self.stop_words] if self.stop_words else tokens
        tokens = kept or tokens
        lo, hi = self.ngram_range
        if (lo, hi) == (1, 1):
            return tokens
        out = []
        for n in range(lo, min(hi, len(tokens)) + 1):
            out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return out


def resolve_stop_words(policy: str | list[str] | None) -> frozenset[str]:
    """Turn `SIDConfig.stop_words` into a set of normalised words."""
    if policy is None or policy == "none":
        return frozenset()
    if policy == "semcore":
        return SEMCORE_STOP_WORDS
    if policy == "english":
        return frozenset(ENGLISH_STOP_WORDS)
    return frozenset(w for word in policy for w in words_of(str(word)))


def make_vectorizer(
    stop_words: frozenset[str], ngram_range: tuple[int, int] = (1, 1), vocabulary=None, binary: bool = False
) -> CountVectorizer:
    """The one `CountVectorizer` setup used for cluster words and keyphrase candidates (analyzer: `WordAnalyzer`)."""
    return CountVectorizer(
        analyzer=WordAnalyzer(stop_words, tuple(ngram_range)),
        lowercase=False,  # `normalize_text` case-folds
        vocabulary=vocabulary,
        binary=binary,
        dtype=np.int64,
    )


def unrepresentable(texts: Iterable[str], offset: int = 0) -> list[tuple[int, str]]:
    """`(position, text)` of the texts that hold no word at all (only emoji, symbols or punctuation)."""
    return [(offset + i, t) for i, t in enumerate(texts) if not words_of(t)]


def raise_unrepresentable(bad: list[tuple[int, str]], ids: Sequence[str]) -> None:
    """Refuse texts without words, naming their target ids, before any embedding or clustering."""
    shown = ", ".join(f"id {ids[p]!r} ({t[:40]!r})" for p, t in bad[:10])
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    raise ValueError(
        f"{len(bad)} text(s) have no word a SID can be made of: {shown}{more}. SID words are letters and digits of "
        "any script; emoji, symbols and punctuation are not. Describe these targets in words (e.g. caption the "
        "images with `caption_images`) or drop them."
    )
