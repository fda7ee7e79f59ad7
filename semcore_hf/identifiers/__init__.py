"""Structured natural-language identifiers (SIDs): build, store and extend them; caption images to build them from."""

from semcore_hf.identifiers.builder import SIDBuilder
from semcore_hf.identifiers.captioning import caption_images
from semcore_hf.identifiers.config import SIDConfig
from semcore_hf.identifiers.index import SIDIndex

__all__ = ["SIDConfig", "SIDBuilder", "SIDIndex", "caption_images"]
