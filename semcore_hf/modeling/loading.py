"""The one place that loads a model and its tokenizer / processor, and says which kind of model it is.

Training (`prepare_model_for_sids`, `semcore-hf train`), retrieval, verification and captioning all load through
`load_model_and_processor` (or `load_trained_model`, which also applies a LoRA adapter), so a checkpoint is read the
same way, with the same Auto classes, everywhere.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

MODEL_KINDS = ("auto", "causal_lm", "image_text_to_text")
ADAPTER_CONFIG_FILE = "adapter_config.json"


def detect_model_kind(model_name_or_path: str, **config_kwargs: Any) -> str:
    """`"image_text_to_text"` if the config maps to an `AutoModelForImageTextToText` class, else `"causal_lm"`.

    Args:
        model_name_or_path (`str`): a local directory or a Hub id.
        **config_kwargs: passed to `AutoConfig.from_pretrained` (e.g. `revision`, `trust_remote_code`).
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    config = AutoConfig.from_pretrained(model_name_or_path, **config_kwargs)
    return "image_text_to_text" if config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES else "causal_lm"


def load_model_and_processor(
    model_name_or_path: str,
    model_kind: str = "auto",
    processor_only: bool = False,
    processor_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> tuple[Any, Any, str]:
    """Load a causal LM + tokenizer or a VLM + processor with the Auto classes.

    Args:
        model_name_or_path (`str`): a local directory or a Hub id.
        model_kind (`str`, *optional*, defaults to `"auto"`): `"causal_lm"`, `"image_text_to_text"` or `"auto"`
            (read from the config, see `detect_model_kind`).
        processor_only (`bool`, *optional*, defaults to `False`): load only the tokenizer / processor (the model
            slot of the result is `None`); for adapter folders, which hold a tokenizer but no `config.json`.
        processor_kwargs (`dict`, *optional*): passed to `AutoTokenizer` / `AutoProcessor.from_pretrained`.
        **model_kwargs: passed to the model's `from_pretrained` (e.g. `dtype`, `revision`).

    Returns:
        `(model, processing_class, model_kind)`.
    """
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    processor_kwargs = dict(processor_kwargs or {})
    for key in ("trust_remote_code", "revision"):
        if key in model_kwargs:
            processor_kwargs.setdefault(key, model_kwargs[key])
    if model_kind not in MODEL_KINDS:
        raise ValueError(f"model_kind must be one of {MODEL_KINDS}, got {model_kind!r}.")
    if model_kind == "auto":
        if processor_only:
            raise ValueError("processor_only needs an explicit model_kind.")
        config_kwargs = {k: model_kwargs[k] for k in ("trust_remote_code", "revision") if k in model_kwargs}
        model_kind = detect_model_kind(model_name_or_path, **config_kwargs)
    model = None
    if model_kind == "image_text_to_text":
        if not processor_only:
            model = AutoModelForImageTextToText.from_pretrained(model_name_or_path, **model_kwargs)
        processing_class = AutoProcessor.from_pretrained(model_name_or_path, **processor_kwargs)
    else:
        if not processor_only:
            model = AutoModelForCausalLM.from_pretrained(model_name_or_path, **model_kwargs)
        processing_class = AutoTokenizer.from_pretrained(model_name_or_path, **processor_kwargs)
    return model, processing_class, model_kind


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """Whether the local folder `path` holds a peft adapter (`adapter_config.json`) rather than a full model."""
    return os.path.isfile(os.path.join(path, ADAPTER_CONFIG_FILE))


def adapter_base_model(path: str | os.PathLike) -> str:
    """The `base_model_name_or_path` a local adapter folder records."""
    with open(os.path.join(path, ADAPTER_CONFIG_FILE), encoding="utf-8") as f:
        return json.load(f)["base_model_name_or_path"]


def load_trained_model(
    path: str | os.PathLike, model_kind: str = "auto", merge_adapter: bool = True, **model_kwargs: Any
) -> tuple[Any, Any, str]:
    """Load a SID-trained model folder: a full checkpoint, or a LoRA adapter applied to its base.

    For an adapter the tokenizer / processor comes from the adapter folder (it holds the SID tokens), and the base
    model is grown to the tokenizer's size before the adapter is applied, as `peft.AutoPeftModel` does: a base
    recorded as the original Hub model (see `semcore_hf.hub.push_trained_model`) has no rows for the new tokens, and
    the adapter carries them. The base is the recorded `base_model_name_or_path`, or the `sid_ready_base/` folder that
    `semcore-hf train` keeps next to the adapter when the recorded path no longer exists (a moved output folder).

    Args:
        path (`str` or `os.PathLike`): a local folder (download Hub repos first, e.g. with
            `semcore_hf.hub.snapshot`).
        model_kind (`str`, *optional*, defaults to `"auto"`): see `load_model_and_processor`.
        merge_adapter (`bool`, *optional*, defaults to `True`): merge the adapter into the base (a plain
            transformers model, fastest at inference); `False` returns the `PeftModel`.
        **model_kwargs: passed to the model's `from_pretrained` (e.g. `dtype`).

    Returns:
        `(model, processing_class, model_kind)`.
    """
    path = str(path)
    if not is_adapter_dir(path):
        return load_model_and_processor(path, model_kind, **model_kwargs)
    from peft import PeftModel

    base = adapter_base_model(path)
    local_base = os.path.join(path, "sid_ready_base")
    if not os.path.isdir(os.path.expanduser(str(base))) and os.path.isdir(local_base):
        # `semcore-hf train` keeps the SID-ready base next to the adapter; a recorded absolute path breaks as soon as
        # the output folder is moved or copied.
        base = local_base
    model, _, kind = load_model_and_processor(base, model_kind, **model_kwargs)
    _, processing_class, _ = load_model_and_processor(path, kind, processor_only=True)
    vocab = len(getattr(processing_class, "tokenizer", None) or processing_class)
    if model.get_input_embeddings().num_embeddings < vocab:
        # The new rows are overwritten by the adapter's trainable tokens / saved modules: no need for mean resizing.
        model.resize_token_embeddings(vocab, mean_resizing=False)
    model = PeftModel.from_pretrained(model, path)
    return (model.merge_and_unload() if merge_adapter else model), processing_class, kind
