"""Trie-constrained decoding: `SIDTrie` (CSR trie of SID token sequences) and `SIDConstrainedLogitsProcessor`."""

from semcore_hf.decoding.processor import SIDConstrainedLogitsProcessor
from semcore_hf.decoding.trie import SIDTrie

__all__ = ["SIDConstrainedLogitsProcessor", "SIDTrie"]
