"""Make any causal LM or VLM SID-ready: add the SID structure tokens, resize the embeddings, save atomically."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from semcore_hf._io import HF_CHECKPOINT_PATTERNS, atomic_artefact, files_matching, read_manifest, resolve_artefact_dir
from semcore_hf.data.prompts import PROMPT_FORMAT
from semcore_hf.modeling.loading import load_model_and_processor
from semcore_hf.tokenization import SIDTokenizerExtension
from semcore_hf.tokenization.extension import CONFIG_NAME as EXTENSION_FILE

logger = logging.getLogger(__name__)

PREPARED_FROM_FILE = "sid_ready_source.json"
ARTEFACT_KIND = "sid_ready_model"
CHAT_TEMPLATE_CHOICES = ("auto", "compact", "model")


def is_prepared_model_dir(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds a SID-ready model that `prepare_model_for_sids` wrote.

    True when its manifest lists a `sid_ready_model`, or, for folders written before manifests existed, when it holds
    a `sid_ready_source.json` that no other artefact's manifest entry claims.
    """
    d = resolve_artefact_dir(directory)
    if not d.is_dir():
        return False
    manifest = read_manifest(d)
    entries = manifest["artefacts"] if manifest else {}
    if ARTEFACT_KIND in entries:
        return True
    claimed = {f for e in entries.values() for f in e["files"]}
    return (d / PREPARED_FROM_FILE).is_file() and PREPARED_FROM_FILE not in claimed


def preparation(directory: str | os.PathLike) -> dict | None:
    """How a SID-ready directory was prepared (`base_model`, `chat_template`, `prompt_format`), `None` if
    `prepare_model_for_sids` did not write it."""
    if not is_prepared_model_dir(directory):
        return None
    try:
        with open(resolve_artefact_dir(directory) / PREPARED_FROM_FILE, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("base_model"), str) else None


def prepared_from(directory: str | os.PathLike) -> str | None:
    """The base model a SID-ready directory was prepared from (`None` if `prepare_model_for_sids` did not write it)."""
    info = preparation(directory)
    return None if info is None else info["base_model"]


def preparation_settings(model_name_or_path: str, chat_template: str, extension: SIDTokenizerExtension) -> dict:
    """What a SID-ready folder records about its preparation; a folder is reused only when all of it matches."""
    import hashlib

    tokens = "\n".join(extension.identifier_tokens)
    return {
        "base_model": str(model_name_or_path),
        "chat_template": chat_template,
        "prompt_format": PROMPT_FORMAT,
        "identifier_tokens": hashlib.sha256(tokens.encode("utf-8")).hexdigest()[:16] if tokens else None,
    }


def resolve_chat_template(choice: str, model_kind: str) -> str:
    """`"compact"` or `"model"`: which chat template a SID-ready model of `model_kind` gets for `choice`."""
    if choice not in CHAT_TEMPLATE_CHOICES:
        raise ValueError(f"chat_template must be one of {CHAT_TEMPLATE_CHOICES}, got {choice!r}.")
    if choice == "auto":
        return "compact" if model_kind == "causal_lm" else "model"
    if choice == "compact" and model_kind != "causal_lm":
        raise ValueError(
            "chat_template='compact' is for text-only models: a VLM's own template renders its image placeholders "
            "(use 'model' or 'auto')."
        )
    return choice


def _legacy_files(directory: Path) -> list[str]:
    """The files of a SID-ready model written before manifests existed."""
    if not is_prepared_model_dir(directory):
        return []
    return files_matching(directory, [*HF_CHECKPOINT_PATTERNS, EXTENSION_FILE, PREPARED_FROM_FILE])


def prepare_model_for_sids(
    model_name_or_path: str,
    output_dir: str | os.PathLike,
    extension: SIDTokenizerExtension | None = None,
    model_kind: str = "auto",
    chat_template: str = "auto",
) -> list[int]:
    """Write a SID-ready copy of a base model: structure tokens added, embeddings resized, extension saved.

    `trl sft --config recipe.yaml` can then train `output_dir` directly (it loads models with the Auto classes).

    Args:
        model_name_or_path (`str`): the base model (local directory or Hub id).
        output_dir (`str` or `os.PathLike`): where the SID-ready model, its tokenizer/processor and the
            `SIDTokenizerExtension` JSON are written. The folder is replaced as a whole (a reader sees the complete
            old or new model); files that an earlier `prepare_model_for_sids` wrote there are replaced, any other
            file is kept, and one the new model would overwrite (a base model's own `config.json`, say) raises
            `semcore_hf._io.ArtefactConflictError`.
        extension (`SIDTokenizerExtension`, *optional*): the structure tokens; the default ones if omitted.
        model_kind (`str`, *optional*, defaults to `"auto"`): see `load_model_and_processor`.
        chat_template (`str`, *optional*, defaults to `"auto"`): `"compact"` replaces a text-only model's chat
            template with `semcore_hf.modeling.COMPACT_CHAT_TEMPLATE` (the instruction, a newline, the answer: ~10
            prompt tokens instead of an instruct template's ~45, so training and retrieval are several times
            cheaper); `"model"` keeps the model's own; `"auto"` is `"compact"` for causal LMs and `"model"` for VLMs
            (their templates render the image placeholders).

    Returns:
        `list[int]`: the ids of the new tokens (structure tokens, then any identifier tokens) in the new vocabulary.
    """
    extension = extension or SIDTokenizerExtension(prompt_format=PROMPT_FORMAT)
    model, processing_class, kind = load_model_and_processor(model_name_or_path, model_kind)
    template = resolve_chat_template(chat_template, kind)
    if template == "compact":
        from semcore_hf.modeling.inputs import COMPACT_CHAT_TEMPLATE

        processing_class.chat_template = COMPACT_CHAT_TEMPLATE
    extension.apply(processing_class, model=model)
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    ids = tokenizer.convert_tokens_to_ids([*extension.tokens, *extension.identifier_tokens])
    with atomic_artefact(output_dir, ARTEFACT_KIND, legacy_files=_legacy_files) as tmp:
        model.save_pretrained(tmp)
        processing_class.save_pretrained(tmp)
        extension.save_pretrained(tmp)
        # Which base this is, so a later run can tell a stale SID-ready copy from a reusable one.
        info = preparation_settings(model_name_or_path, template, extension)
        (tmp / PREPARED_FROM_FILE).write_text(json.dumps(info))
    logger.info("SID-ready model written to %s (structure token ids %s)", output_dir, ids)
    return ids
