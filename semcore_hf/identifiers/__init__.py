"""Structured natural-language identifiers (SIDs): build, store and extend them; caption images to build them from.

`sid_format` (the SID string format) is light; the other names load on first use, so that the tokenizer extension and
the data builder, which read and write SID strings, do not pay for scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "SIDConfig": "semcore_hf.identifiers.config",
    "SIDBuilder": "semcore_hf.identifiers.builder",
    "SIDIndex": "semcore_hf.identifiers.index",
    "caption_images": "semcore_hf.identifiers.captioning",
}

__all__ = ["SIDConfig", "SIDBuilder", "SIDIndex", "caption_images"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semcore_hf.identifiers' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from semcore_hf.identifiers.builder import SIDBuilder
    from semcore_hf.identifiers.captioning import caption_images
    from semcore_hf.identifiers.config import SIDConfig
    from semcore_hf.identifiers.index import SIDIndex
