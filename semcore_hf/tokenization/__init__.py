"""SID structure tokens and SID <-> token ids (`SIDTokenizerExtension`); `sid_format` holds the SID text format."""

from semcore_hf.tokenization import sid_format
from semcore_hf.tokenization.extension import SIDTokenizerExtension

__all__ = ["SIDTokenizerExtension", "sid_format"]
