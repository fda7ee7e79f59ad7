"""Make any causal LM or VLM SID-ready: add the SID structure tokens, resize the embeddings, save atomically."""

from __future__ import annotations

import logging
import os

from semcore_hf._io import atomic_directory
from semcore_hf.tokenization import SIDTokenizerExtension

logger = logging.getLogger(__name__)


def detect_model_kind(model_name_or_path: str) -> str:
    """`"image_text_to_text"` if the config maps to an `AutoModelForImageTextToText` class, else `"causal_lm"`."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    config = AutoConfig.from_pretrained(model_name_or_path)
    return "image_text_to_text" if config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES else "causal_lm"


def load_model_and_processor(model_name_or_path: str, model_kind: str = "auto", **model_kwargs):
    """Load a causal LM + tokenizer or a VLM + processor with the Auto classes.

    Args:
        model_name_or_path (`str`): a local directory or a Hub id.
        model_kind (`str`, *optional*, defaults to `"auto"`): `"causal_lm"`, `"image_text_to_text"` or `"auto"`.
        **model_kwargs: passed to `from_pretrained` (e.g. `dtype`).

    Returns:
        `(model, processing_class, model_kind)`.
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    if model_kind == "auto":
        model_kind = detect_model_kind(model_name_or_path)
    if model_kind == "image_text_to_text":
        model = AutoModelForImageTextToText.from_pretrained(model_name_or_path, **model_kwargs)
        processing_class = AutoProcessor.from_pretrained(model_name_or_path)
    elif model_kind == "causal_lm":
        model = AutoModelForCausalLM.from_pretrained(model_name_or_path, **model_kwargs)
        processing_class = AutoTokenizer.from_pretrained(model_name_or_path)
    else:
        raise ValueError(f"model_kind must be 'auto', 'causal_lm' or 'image_text_to_text', got {model_kind!r}.")
    return model, processing_class, model_kind


def prepare_model_for_sids(
    model_name_or_path: str,
    output_dir: str | os.PathLike,
    extension: SIDTokenizerExtension | None = None,
    model_kind: str = "auto",
) -> list[int]:
    """Write a SID-ready copy of a base model: structure tokens added, embeddings resized, extension saved.

    `trl sft --config recipe.yaml` can then train `output_dir` directly (it loads models with the Auto classes).

    Args:
        model_name_or_path (`str`): the base model (local directory or Hub id).
        output_dir (`str` or `os.PathLike`): where the SID-ready model, its tokenizer/processor and the
            `SIDTokenizerExtension` JSON are written (atomically).
        extension (`SIDTokenizerExtension`, *optional*): the structure tokens; the default ones if omitted.
        model_kind (`str`, *optional*, defaults to `"auto"`): see `load_model_and_processor`.

    Returns:
        `list[int]`: the ids of the structure tokens in the new vocabulary.
    """
    extension = extension or SIDTokenizerExtension()
    model, processing_class, _ = load_model_and_processor(model_name_or_path, model_kind)
    extension.apply(processing_class, model=model)
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    ids = tokenizer.convert_tokens_to_ids(list(extension.tokens))
    with atomic_directory(output_dir) as tmp:
        model.save_pretrained(tmp)
        processing_class.save_pretrained(tmp)
        extension.save_pretrained(tmp)
    logger.info("SID-ready model written to %s (structure token ids %s)", output_dir, ids)
    return ids
