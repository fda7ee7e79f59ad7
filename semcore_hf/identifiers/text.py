"""Word normalisation and the stop-word policy shared by c-TF-IDF and the keyphrase extractor (private)."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

# Words are normalised to this pattern (docs/ARCHITECTURE.md), so "|" and "," never occur inside a SID word.
TOKEN_PATTERN = r"[a-z0-9]+(?:['-][a-z0-9]+)*"

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
SEMCORE_STOP_WORDS = frozenset(ENGLISH_STOP_WORDS - NUMBER_WORDS - DISCRIMINATIVE_WORDS)


def resolve_stop_words(policy: str | list[str] | None) -> frozenset[str]:
    """Turn `SIDConfig.stop_words` into a set of words."""
    if policy is None or policy == "none":
        return frozenset()
    if policy == "semcore":
        return SEMCORE_STOP_WORDS
    if policy == "english":
        return frozenset(ENGLISH_STOP_WORDS)
    return frozenset(w.lower() for w in policy)


def make_vectorizer(
    stop_words: frozenset[str], ngram_range: tuple[int, int] = (1, 1), vocabulary=None, binary: bool = False
) -> CountVectorizer:
    """The one `CountVectorizer` setup used for cluster words and keyphrase candidates."""
    return CountVectorizer(
        lowercase=True,
        strip_accents="unicode",
        token_pattern=TOKEN_PATTERN,
        stop_words=sorted(stop_words) if stop_words else None,
        ngram_range=tuple(ngram_range),
        vocabulary=vocabulary,
        binary=binary,
        dtype=np.int64,
    )
