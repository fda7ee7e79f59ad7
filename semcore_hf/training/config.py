"""Arguments that `semcore-hf train` adds on top of TRL's (ScriptArguments, SFTConfig, ModelConfig)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SIDTrainingArguments:
    """What makes a base model SID-ready before TRL's `SFTTrainer` takes over.

    Parameters:
        model_kind (`str`, *optional*, defaults to `"auto"`):
            `"causal_lm"` (text LM, T2I only), `"image_text_to_text"` (VLM, both directions) or `"auto"` (read
            from the model config).
        prepared_model_dir (`str`, *optional*):
            Where the SID-ready base model (structure tokens added, embeddings resized) is written; defaults to
            `<output_dir>/sid_ready_base`.
        chat_template (`str`, *optional*, defaults to `"auto"`):
            See `prepare_model_for_sids`: `"compact"`, `"model"` or `"auto"`.
        train_sid_token_embeddings (`bool`, *optional*, defaults to `True`):
            With LoRA, also train the embedding rows of the new structure tokens (peft `trainable_token_indices`);
            their freshly initialised rows are otherwise frozen at random values.
        sid_index (`str`, *optional*):
            Path or Hub id of the `SIDIndex` the data was built with; recorded in the model card. An index of atomic
            identifiers (`SIDConfig(id_kind="atomic")`) needs it: its one token per target is added to the model.
    """

    model_kind: str = field(
        default="auto",
        metadata={
            "help": "causal_lm, image_text_to_text or auto (read from the model config).",
            "choices": ["auto", "causal_lm", "image_text_to_text"],
        },
    )
    prepared_model_dir: str | None = field(
        default=None, metadata={"help": "Where the SID-ready base model goes (default: <output_dir>/sid_ready_base)."}
    )
    chat_template: str = field(
        default="auto",
        metadata={
            "help": "Chat template of the SID-ready model: compact (instruction + newline; ~10 prompt tokens instead "
            "of an instruct template's ~45), model (its own) or auto (compact for causal LMs, model for VLMs).",
            "choices": ["auto", "compact", "model"],
        },
    )
    train_sid_token_embeddings: bool = field(
        default=True, metadata={"help": "With LoRA, also train the embedding rows of the new SID structure tokens."}
    )
    sid_index: str | None = field(
        default=None,
        metadata={
            "help": "SIDIndex the data was built with: recorded in the model card; atomic identifiers need it (their "
            "one token per target is added to the model)."
        },
    )
