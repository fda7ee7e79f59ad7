"""GENRE-style reference for the decoding tests (a nested-dict trie behind PrefixConstrainedLogitsProcessor)."""

from __future__ import annotations

from semcore_hf._testing import dict_trie, reference_fn  # noqa: F401  (re-exported for the decoding tests)

SIDS = [
    "animal dog | grass, running",
    "animal dog | red sofa",
    "animal cat | red sofa",
    "animal cat | sofa, sitting",
    "park play | two children, ball",
    "street man | bicycle",
    "rain woman | umbrella",
    "lake boats | calm blue lake, three boats",
    "table fruit | wooden table",
    "table fruit | plate",
]
