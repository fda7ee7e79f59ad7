"""GENRE-style reference for the decoding tests (a nested-dict trie behind PrefixConstrainedLogitsProcessor)."""

from __future__ import annotations

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


def dict_trie(seqs):
    """GENRE's nested-dict trie (the reference implementation)."""
    root: dict = {}
    for s in seqs:
        node = root
        for t in s:
            node = node.setdefault(t, {})
    return root


def reference_fn(root, prompt_length, stop_id):
    """`prefix_allowed_tokens_fn` for transformers' `PrefixConstrainedLogitsProcessor` (one `.tolist()` per row)."""

    def fn(batch_id, input_ids):
        node = root
        for t in input_ids[prompt_length:].tolist():
            if t not in node:
                return [stop_id]
            node = node[t]
        return sorted(node) or [stop_id]

    return fn
