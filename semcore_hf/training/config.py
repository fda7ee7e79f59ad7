"""Arguments that `semcore-hf train` adds on top of TRL's (ScriptArguments, SFTConfig, ModelConfig).

They are command-line flags only: a recipe holds nothing but keys TRL knows, so that `trl sft --config recipe.yaml`
runs it as it is (on a model `semcore-hf prepare-model` made SID-ready).
"""

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
        freeze_vision_tower (`bool`, *optional*, defaults to `True`):
            VLMs: keep the vision encoder frozen (full fine-tuning then trains the projector and the language model).
        train_only_projector (`bool`, *optional*, defaults to `False`):
            VLMs: train the multimodal projector alone (LLaVA's stage 1, feature alignment): the language model and
            the vision encoder stay frozen, so the only way to lower the captioning loss is to carry the image
            into the language model's embedding space, not to learn the captions' prior.
        train_sid_token_embeddings (`bool`, *optional*, defaults to `True`):
            With LoRA, also train the input and (untied) output embedding rows of the new structure tokens (peft
            `trainable_token_indices`); their freshly initialised rows are otherwise frozen at random values. Not
            needed when the recipe trains the embedding layers whole (`lora_modules_to_save`).
        sid_index (`str`, *optional*):
            Path or Hub id of the `SIDIndex` the data was built with; recorded in the model card and copied to
            `<output_dir>/sid_index`, so `SemCORERetriever.from_pretrained(output_dir)` needs nothing else. An index
            of atomic identifiers (`SIDConfig(id_kind="atomic")`) needs it: its one token per target is added.
        recall_eval_source (`str`, *optional*):
            An image-caption source (what `build-sids` read): Recall@K of its `recall_eval_split` is computed at the
            end of every epoch (`semcore_hf.evaluation.SIDRetrievalEvaluator`) and logged; needs `sid_index`.
        recall_eval_split (`str`, *optional*, defaults to `"validation"`), recall_eval_image_root (`str`,
            *optional*), recall_eval_max_queries (`int`, *optional*, defaults to 200), recall_eval_k (`list[int]`,
            *optional*, defaults to `[1, 5, 10]`): the split, image folder, number of queries and cut-offs.
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
    freeze_vision_tower: bool = field(
        default=True,
        metadata={
            "help": "VLMs: keep the vision encoder frozen (its features are pretrained; no backward pass through "
            "it, which is most of a small VLM's training cost per image row)."
        },
    )
    train_only_projector: bool = field(
        default=False,
        metadata={
            "help": "VLMs: train the multimodal projector only (LLaVA stage 1 alignment; the language model and the "
            "vision encoder stay frozen)."
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
    recall_eval_source: str | None = field(
        default=None,
        metadata={
            "help": "Image-caption source (as given to build-sids) whose recall_eval_split is retrieved at the end of "
            "every epoch: Recall@K in the training logs. Needs --sid_index."
        },
    )
    recall_eval_split: str = field(default="validation", metadata={"help": "The split of recall_eval_source."})
    recall_eval_image_root: str | None = field(
        default=None, metadata={"help": "Base folder of recall_eval_source's relative image paths."}
    )
    recall_eval_max_queries: int | None = field(
        default=200, metadata={"help": "Queries of the per-epoch Recall@K (the first N of the split)."}
    )
    recall_eval_k: list[int] = field(
        default_factory=lambda: [1, 5, 10], metadata={"help": "Cut-offs of the per-epoch Recall@K."}
    )
