"""semcore_hf: SemCORE generative cross-modal retrieval on the Hugging Face stack.

The public API is the names in `__all__`; they are imported lazily so that `import semcore_hf` stays cheap and a
sub-command of the CLI only pays for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0.dev0"  # the one source of the version (pyproject.toml reads it)

_EXPORTS = {
    "SIDConfig": "semcore_hf.identifiers",
    "SIDBuilder": "semcore_hf.identifiers",
    "SIDIndex": "semcore_hf.identifiers",
    "caption_images": "semcore_hf.identifiers",
    "SIDTokenizerExtension": "semcore_hf.tokenization",
    "SIDDatasetBuilder": "semcore_hf.data",
    "build_sid_dataset": "semcore_hf.data",
    "SIDTrie": "semcore_hf.decoding",
    "SIDConstrainedLogitsProcessor": "semcore_hf.decoding",
    "SemCORERetriever": "semcore_hf.retrieval",
    "GSVScorer": "semcore_hf.verification",
    "recall_at_k": "semcore_hf.evaluation",
    "SIDRetrievalEvaluator": "semcore_hf.evaluation",
}

__all__ = [
    "GSVScorer",
    "SIDBuilder",
    "SIDConfig",
    "SIDConstrainedLogitsProcessor",
    "SIDDatasetBuilder",
    "SIDIndex",
    "SIDRetrievalEvaluator",
    "SIDTokenizerExtension",
    "SIDTrie",
    "SemCORERetriever",
    "__version__",
    "build_sid_dataset",
    "caption_images",
    "recall_at_k",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semcore_hf' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from semcore_hf.data import SIDDatasetBuilder, build_sid_dataset
    from semcore_hf.decoding import SIDConstrainedLogitsProcessor, SIDTrie
    from semcore_hf.evaluation import SIDRetrievalEvaluator, recall_at_k
    from semcore_hf.identifiers import SIDBuilder, SIDConfig, SIDIndex, caption_images
    from semcore_hf.retrieval import SemCORERetriever
    from semcore_hf.tokenization import SIDTokenizerExtension
    from semcore_hf.verification import GSVScorer
