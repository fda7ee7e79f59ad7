"""SID structure tokens and SID <-> token ids (`SIDTokenizerExtension`).

The SID text format lives with the identifiers (`semcore_hf.identifiers.sid_format`, re-exported as `sid_format`).
"""

from semcore_hf.identifiers import sid_format
from semcore_hf.tokenization.extension import SIDTokenizerExtension

__all__ = ["SIDTokenizerExtension", "sid_format"]
