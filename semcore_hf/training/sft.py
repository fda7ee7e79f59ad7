"""The glue around TRL's `SFTTrainer`: prepare a SID-ready base model, then run TRL's own SFT recipe on it.

Training is plain next-token cross-entropy on the SID completion (TRL prompt-completion data supervises only the
completion), so there is no trainer of our own: like peft, we plug into TRL.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from semcore_hf.data.prompts import PROMPT_FORMAT
from semcore_hf.tokenization import SIDTokenizerExtension
from semcore_hf.training.config import SIDTrainingArguments
from semcore_hf.training.prepare import (
    detect_model_kind,
    is_prepared_model_dir,
    preparation,
    preparation_settings,
    prepare_model_for_sids,
    resolve_chat_template,
)

logger = logging.getLogger(__name__)


def make_parser(prog: str | None = None):
    """A `TrlParser` over (SIDTrainingArguments, ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig).

    It accepts `--config recipe.yaml` (the same YAML `trl sft --config` takes, plus the SIDTrainingArguments keys) and
    command-line flags that override the YAML.
    """
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser

    return TrlParser((SIDTrainingArguments, ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig), prog=prog)


def train(sid_args: SIDTrainingArguments, script_args, training_args, model_args, dataset_args=None) -> str:
    """Prepare the base model for SIDs and fine-tune it with TRL's `SFTTrainer`.

    Args:
        sid_args (`SIDTrainingArguments`): SID-specific options.
        script_args (`trl.ScriptArguments`): dataset name / config / splits.
        training_args (`trl.SFTConfig`): the training arguments (output_dir, steps, lr, ...).
        model_args (`trl.ModelConfig`): base model and LoRA options.
        dataset_args (`trl.DatasetMixtureConfig`, *optional*): a `datasets:` mixture instead of `dataset_name`.

    Returns:
        `str`: the output directory holding the trained model (or adapter), its tokenizer/processor and the
        `SIDTokenizerExtension`.
    """
    from trl import SFTTrainer, get_peft_config

    if not model_args.model_name_or_path:
        raise ValueError("Set `model_name_or_path` (in the recipe YAML or with --model_name_or_path).")
    kind = sid_args.model_kind
    if kind == "auto":
        kind = detect_model_kind(model_args.model_name_or_path)
    prepared = sid_args.prepared_model_dir or os.path.join(training_args.output_dir, "sid_ready_base")
    extension = SIDTokenizerExtension(prompt_format=PROMPT_FORMAT, identifier_tokens=_identifier_tokens(sid_args))
    template = resolve_chat_template(sid_args.chat_template, kind)
    if preparation(prepared) == preparation_settings(model_args.model_name_or_path, template, extension):
        logger.info("Re-using the SID-ready base model in %s", prepared)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(prepared)
        new_ids = tok.convert_tokens_to_ids([*extension.tokens, *extension.identifier_tokens])
    else:
        # Never delete the folder: prepare_model_for_sids replaces only the files an earlier preparation wrote.
        if is_prepared_model_dir(prepared):
            logger.info("%s was prepared from another base or with other settings; preparing it again.", prepared)
        elif os.path.lexists(prepared) and not (os.path.isdir(prepared) and not os.listdir(prepared)):
            raise ValueError(
                f"--prepared_model_dir {prepared} already exists and was not written by prepare_model_for_sids (it "
                "has no SID-ready manifest), so semcore-hf will neither use nor replace it. Choose another "
                "--prepared_model_dir or remove it yourself."
            )
        new_ids = prepare_model_for_sids(
            model_args.model_name_or_path, prepared, extension, kind, chat_template=sid_args.chat_template
        )

    train_dataset, eval_dataset = _load_training_data(script_args, dataset_args)
    peft_config = get_peft_config(model_args)
    if peft_config is not None and sid_args.train_sid_token_embeddings:
        # The structure tokens' rows are new: without this LoRA would leave them at their random initialisation.
        peft_config = replace(peft_config, trainable_token_indices=list(new_ids))
    if kind == "image_text_to_text" and training_args.max_length is not None:
        logger.warning("VLM training: setting max_length=None (truncation breaks image tokens, trl#4289).")
        training_args.max_length = None

    model_init_kwargs = dict(training_args.model_init_kwargs or {})
    if model_args.dtype is not None:
        model_init_kwargs.setdefault("dtype", model_args.dtype)
    training_args.model_init_kwargs = model_init_kwargs or None
    if kind == "image_text_to_text":
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(prepared, **model_init_kwargs)
        processing_class = AutoProcessor.from_pretrained(prepared)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(prepared, **model_init_kwargs)
        processing_class = AutoTokenizer.from_pretrained(prepared)
    training_args.model_init_kwargs = None  # the model is already instantiated
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=processing_class,
        peft_config=peft_config,
    )
    _expose_trainable_tokens_bias(trainer.model)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        extension.save_pretrained(training_args.output_dir)
        _write_model_card(training_args.output_dir, model_args, script_args, dataset_args, sid_args, kind)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return training_args.output_dir


_TRAINING_COLUMNS = ("prompt", "completion", "images")


def _identifier_tokens(sid_args: SIDTrainingArguments) -> list[str]:
    """The new tokens the index's identifiers need (atomic identifiers: one per target); none for SIDs."""
    if not sid_args.sid_index:
        return []
    from semcore_hf.identifiers import SIDIndex
    from semcore_hf.identifiers.kinds import atomic_tokens

    index = SIDIndex.from_pretrained(sid_args.sid_index)
    return atomic_tokens(index.sids) if index.config.id_kind == "atomic" else []


def _load_training_data(script_args, dataset_args):
    """Train (and eval) datasets from `dataset_name` + `dataset_config`, else from a TRL `datasets:` mixture.

    Unlike `trl sft`, an explicit `dataset_name` wins over the recipe's `datasets:` mixture, so that
    `semcore-hf train --config recipe.yaml --dataset_name my/sids --dataset_config t2i,memorize_t2i` re-targets a
    recipe from the command line. `dataset_config` may list several task configs separated by commas; they are
    concatenated. Memorisation configs (`memorize_*`) contribute every split, test included: GRACE-style
    memorisation teaches the model the identifier of every target, including the targets of test queries.
    """
    from datasets import concatenate_datasets, load_dataset
    from trl import get_dataset

    if script_args.dataset_name:
        if dataset_args is not None and dataset_args.datasets:
            logger.warning("dataset_name=%s replaces the recipe's `datasets:` mixture.", script_args.dataset_name)
        configs = [c.strip() for c in (script_args.dataset_config or "").split(",") if c.strip()] or [None]
        train_parts, eval_parts = [], []
        for config in configs:
            dd = load_dataset(script_args.dataset_name, name=config)
            if config is not None and config.startswith("memorize"):
                train_parts.extend(dd[s] for s in dd)
                continue
            if script_args.dataset_train_split not in dd:
                raise ValueError(
                    f"Split {script_args.dataset_train_split!r} not in {script_args.dataset_name} config {config!r} "
                    f"(it has {list(dd)}); set `dataset_train_split`."
                )
            train_parts.append(dd[script_args.dataset_train_split])
            if script_args.dataset_test_split in dd:
                eval_parts.append(dd[script_args.dataset_test_split])
        return _concat(train_parts, concatenate_datasets), _concat(eval_parts, concatenate_datasets)
    if dataset_args is not None and dataset_args.datasets:
        dataset = get_dataset(dataset_args)
        return dataset["train"], dataset.get("test")
    raise ValueError("Set `dataset_name` (a folder written by `semcore-hf build-sids`) or a `datasets:` mixture.")


def _concat(parts, concatenate_datasets):
    """Concatenate task splits on the columns TRL trains on (tasks carry different bookkeeping columns)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    with_images = ["images" in p.column_names for p in parts]
    if any(with_images) and not all(with_images):
        raise ValueError(
            "Some of the dataset configs have an `images` column and others do not (e.g. a text-only `t2i` with an "
            "image task such as `i2t`); TRL cannot batch them together. Build every task for the VLM (without "
            "--text-only) or train the text-only and the image tasks in separate runs."
        )
    keep = [c for c in _TRAINING_COLUMNS if all(c in p.column_names for p in parts)]
    return concatenate_datasets([p.select_columns(keep) for p in parts])


def _expose_trainable_tokens_bias(model) -> None:
    """Let TRL's fused LM head read `lm_head.bias` through peft's `TrainableTokensWrapper`.

    With tied embeddings, peft wraps the LM head too when `trainable_token_indices` is set; the wrapper serves
    `.weight` (the merged weights, so gradients reach the new token rows) but raises on `.bias`, which TRL's fused
    head reads. A bias-free head has `bias = None`, so exposing that exact value is safe.
    """
    try:
        from peft.utils.other import TrainableTokensWrapper
    except ImportError:  # pragma: no cover
        return
    for module in model.modules():
        if isinstance(module, TrainableTokensWrapper) and "bias" not in module.__dict__:
            original = module.original_module
            if getattr(original, "bias", None) is None:
                module.__dict__["bias"] = None


def _write_model_card(output_dir, model_args, script_args, dataset_args, sid_args, kind: str) -> None:
    """README.md of the trained model, from `model_cards/model_card.md` (replaces TRL's / peft's generic card)."""
    from semcore_hf._io import atomic_write_text
    from semcore_hf.model_cards import render_card

    if script_args.dataset_name:
        data = f"{script_args.dataset_name} ({script_args.dataset_config or 'default'})"
    else:
        data = ", ".join(f"{d.path} ({d.name})" for d in (dataset_args.datasets if dataset_args else []))
    card = render_card(
        "model_card",
        name=os.path.basename(os.path.abspath(output_dir)),
        base_model=model_args.model_name_or_path,
        directions="text-to-image" if kind == "causal_lm" else "text-to-image and image-to-text",
        dataset=data,
        index_id=sid_args.sid_index,
        peft=bool(model_args.use_peft),
    )
    atomic_write_text(os.path.join(output_dir, "README.md"), card)
