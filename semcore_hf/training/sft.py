"""The glue around TRL's `SFTTrainer`: prepare a SID-ready base model, then run TRL's own SFT recipe on it.

Training is plain next-token cross-entropy on the SID completion (TRL prompt-completion data supervises only the
completion), so there is no trainer of our own: like peft, we plug into TRL.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from semcore_hf.data.prompts import PROMPT_FORMAT
from semcore_hf.modeling import detect_model_kind, load_model_and_processor
from semcore_hf.tokenization import SIDTokenizerExtension
from semcore_hf.training.config import SIDTrainingArguments
from semcore_hf.training.prepare import (
    PREPARED_FROM_FILE,
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


def train(
    sid_args: SIDTrainingArguments, script_args, training_args, model_args, dataset_args=None, callbacks=None
) -> str:
    """Prepare the base model for SIDs (unless it already is SID-ready) and fine-tune it with TRL's `SFTTrainer`.

    Under `accelerate launch` / `torchrun` the preparation runs once, on the main process, while the others wait
    (`TrainingArguments.main_process_first`); they then reuse the SID-ready folder it wrote.

    Args:
        sid_args (`SIDTrainingArguments`): SID-specific options.
        script_args (`trl.ScriptArguments`): dataset name / config / splits.
        training_args (`trl.SFTConfig`): the training arguments (output_dir, steps, lr, ...). With `push_to_hub`,
            the trained model, its SID index and card are pushed once at the end (`semcore_hf.hub.push_trained_model`)
            instead of by the trainer, whose generic card would replace ours.
        model_args (`trl.ModelConfig`): base model and LoRA options.
        dataset_args (`trl.DatasetMixtureConfig`, *optional*): a `datasets:` mixture instead of `dataset_name`.
        callbacks (`list`, *optional*): objects with an `attach(trainer)` method, attached before training, e.g.
            `semcore_hf.evaluation.SIDRetrievalEvaluator` (what `semcore-hf train --recall_eval_source` builds).
            Training never imports evaluation itself: the data flow runs one way.

    Returns:
        `str`: the output directory holding the trained model (or adapter), its tokenizer/processor, the
        `SIDTokenizerExtension`, a model card and (with `sid_index`) a copy of the index in `sid_index/`.
    """
    from trl import SFTTrainer, get_peft_config

    if not model_args.model_name_or_path:
        raise ValueError("Set `model_name_or_path` (in the recipe YAML or with --model_name_or_path).")
    if sid_args.recall_eval_source and not callbacks:
        raise ValueError(
            "recall_eval_source is turned into an evaluator by `semcore-hf train`; from Python pass "
            "callbacks=[SIDRetrievalEvaluator.from_source(source, index, ...)] (semcore_hf.evaluation)."
        )
    base = model_args.model_name_or_path
    kind = sid_args.model_kind
    if kind == "auto":
        kind = detect_model_kind(base)
    if kind == "image_text_to_text" and getattr(training_args, "train_sampling_strategy", None) == "group_by_length":
        # TRL tokenises VLM rows in its collator: the sampler has no lengths to group (it fails after loading).
        raise ValueError(
            "--train_sampling_strategy group_by_length needs pre-tokenised rows, which VLM training does not have; "
            "use --train_sampling_strategy random (or drop the key from the recipe)."
        )
    if sid_args.train_only_projector and kind != "image_text_to_text":
        raise ValueError("--train_only_projector true needs a VLM (model_kind image_text_to_text).")
    extension = SIDTokenizerExtension(prompt_format=PROMPT_FORMAT, identifier_tokens=_identifier_tokens(sid_args))
    template = resolve_chat_template(sid_args.chat_template, kind)
    with training_args.main_process_first(local=True, desc="SID-ready base model"):
        prepared, new_ids = _sid_ready_model(base, sid_args, training_args, extension, kind, template)

    train_dataset, eval_dataset = _load_training_data(script_args, dataset_args, kind)
    if kind == "image_text_to_text" and training_args.max_length is not None:
        logger.warning("VLM training: setting max_length=None (truncation breaks image tokens, trl#4289).")
        training_args.max_length = None

    model_init_kwargs = dict(training_args.model_init_kwargs or {})
    if model_args.dtype is not None:
        model_init_kwargs.setdefault("dtype", model_args.dtype)
    model, processing_class, _ = load_model_and_processor(prepared, kind, **model_init_kwargs)
    training_args.model_init_kwargs = None  # the model is already instantiated
    if kind == "image_text_to_text" and sid_args.freeze_vision_tower:
        tower = _vision_tower(model)
        if tower is not None:
            tower.requires_grad_(False)
    if sid_args.train_only_projector:
        projector = _projector(model)
        model.requires_grad_(False)
        projector.requires_grad_(True)
    peft_config = get_peft_config(model_args)
    if peft_config is not None and sid_args.train_sid_token_embeddings:
        peft_config = _with_sid_token_rows(peft_config, model, new_ids)
    # The trainer would push its own generic model card (at every save, and at the end): we push once, with ours.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset if training_args.eval_strategy != "no" else None,
        processing_class=processing_class,
        peft_config=peft_config,
    )
    _expose_trainable_tokens_bias(trainer.model)
    for callback in callbacks or ():
        callback.attach(trainer)
    logger.info("SFT on %d process(es) (%s)", training_args.world_size, training_args.parallel_mode.value)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        out = training_args.output_dir
        extension.save_pretrained(out)
        if sid_args.sid_index:
            from semcore_hf.hub import INDEX_SUBFOLDER
            from semcore_hf.identifiers import SIDIndex

            SIDIndex.from_pretrained(sid_args.sid_index).save_pretrained(os.path.join(out, INDEX_SUBFOLDER))
        _write_model_card(out, base, model_args, script_args, dataset_args, sid_args, kind, extension)
        if push_to_hub:
            from semcore_hf.hub import push_trained_model

            repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(out))
            push_trained_model(
                out,
                repo_id,
                token=training_args.hub_token,
                private=training_args.hub_private_repo,
                revision=training_args.hub_revision,
            )
            logger.info("Pushed %s to the Hub as %s", out, repo_id)
    training_args.push_to_hub = push_to_hub
    return training_args.output_dir


def _sid_ready_model(base: str, sid_args, training_args, extension, kind: str, template: str):
    """`(folder, new token ids)` of the SID-ready model to train: `base` itself when it already is one (`semcore-hf
    prepare-model` output, local or on the Hub) prepared with these settings, else a fresh preparation in
    `prepared_model_dir` (reused when it matches)."""
    if _is_sid_ready(base, extension, template):
        logger.info("%s is SID-ready: training it as is.", base)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base)
        return base, tok.convert_tokens_to_ids([*extension.tokens, *extension.identifier_tokens])
    prepared = sid_args.prepared_model_dir or os.path.join(training_args.output_dir, "sid_ready_base")
    if preparation(prepared) == preparation_settings(base, template, extension):
        logger.info("Re-using the SID-ready base model in %s", prepared)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(prepared)
        return prepared, tok.convert_tokens_to_ids([*extension.tokens, *extension.identifier_tokens])
    # Never delete the folder: prepare_model_for_sids replaces only the files an earlier preparation wrote.
    if is_prepared_model_dir(prepared):
        logger.info("%s was prepared from another base or with other settings; preparing it again.", prepared)
    elif os.path.lexists(prepared) and not (os.path.isdir(prepared) and not os.listdir(prepared)):
        raise ValueError(
            f"--prepared_model_dir {prepared} already exists and was not written by prepare_model_for_sids (it "
            "has no SID-ready manifest), so semcore-hf will neither use nor replace it. Choose another "
            "--prepared_model_dir or remove it yourself."
        )
    new_ids = prepare_model_for_sids(base, prepared, extension, kind, chat_template=sid_args.chat_template)
    return prepared, new_ids


def _is_sid_ready(model: str, extension, template: str) -> bool:
    """Whether `model` (a folder or Hub id) is a SID-ready model prepared with `extension` and `template`."""
    import json

    if os.path.isdir(os.path.expanduser(model)):
        info = preparation(model)
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

        try:
            with open(hf_hub_download(model, PREPARED_FROM_FILE), encoding="utf-8") as f:
                info = json.load(f)
        except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError, OSError, ValueError):
            return False
    if not isinstance(info, dict) or not isinstance(info.get("base_model"), str):
        return False
    return info == preparation_settings(info["base_model"], template, extension)


def _with_sid_token_rows(peft_config, model, new_ids: list[int]):
    """`peft_config` that also trains the new tokens' embedding rows, input and (untied) output.

    Without it LoRA leaves them at their random initialisation. Only the new rows are trained (peft
    `trainable_token_indices`); a model whose embeddings are not tied gets its output rows trained too (without them
    it could never learn to *generate* a SID token). Nothing is added when the recipe already trains the embedding
    layers whole (`lora_modules_to_save: [embed_tokens, lm_head]`, TRL's own option for new tokens).
    """
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    names = {m: n.split(".")[-1] for n, m in model.named_modules() if m is inp or m is out}
    saved = {m.split(".")[-1] for m in peft_config.modules_to_save or []}
    if names.get(inp) in saved:
        logger.info("The recipe trains the embedding layers whole (modules_to_save %s).", sorted(saved))
        return peft_config
    tied = out is None or out.weight is inp.weight
    if tied:
        return replace(peft_config, trainable_token_indices=list(new_ids))
    return replace(peft_config, trainable_token_indices={names[inp]: list(new_ids), names[out]: list(new_ids)})


_TRAINING_COLUMNS = ("prompt", "completion", "images")


def _identifier_tokens(sid_args: SIDTrainingArguments) -> list[str]:
    """The new tokens the index's identifiers need (atomic identifiers: one per target); none for SIDs."""
    if not sid_args.sid_index:
        return []
    from semcore_hf.identifiers import SIDIndex
    from semcore_hf.identifiers.kinds import atomic_tokens

    index = SIDIndex.from_pretrained(sid_args.sid_index)
    return atomic_tokens(index.sids) if index.config.id_kind == "atomic" else []


def _load_training_data(script_args, dataset_args, model_kind: str = "causal_lm"):
    """Train (and eval) datasets from `dataset_name` + `dataset_config`, else from a TRL `datasets:` mixture.

    Unlike `trl sft`, an explicit `dataset_name` wins over the recipe's `datasets:` mixture, so that
    `semcore-hf train --config recipe.yaml --dataset_name my/sids --dataset_config t2i,memorize_t2i` re-targets a
    recipe from the command line. `dataset_config` may list several task configs separated by commas; they are
    concatenated. Memorisation configs (`memorize_*`) and `pseudo_t2i` contribute every split, test included:
    GRACE-style memorisation teaches the model the identifier of every target, including the targets of test queries
    (their rows come from the targets' own texts, never from a test query).
    """
    from datasets import concatenate_datasets, load_dataset
    from trl import get_dataset

    from semcore_hf.data.builder import EVERY_SPLIT_TASKS

    if script_args.dataset_name:
        if dataset_args is not None and dataset_args.datasets:
            logger.warning("dataset_name=%s replaces the recipe's `datasets:` mixture.", script_args.dataset_name)
        configs = [c.strip() for c in (script_args.dataset_config or "").split(",") if c.strip()] or [None]
        train_parts, eval_parts = [], []
        for config in configs:
            dd = load_dataset(script_args.dataset_name, name=config)
            if config in EVERY_SPLIT_TASKS:
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
        return _concat(train_parts, concatenate_datasets, model_kind), _concat(
            eval_parts, concatenate_datasets, model_kind
        )
    if dataset_args is not None and dataset_args.datasets:
        dataset = get_dataset(dataset_args)
        return dataset["train"], dataset.get("test")
    raise ValueError("Set `dataset_name` (a folder written by `semcore-hf build-sids`) or a `datasets:` mixture.")


def _concat(parts, concatenate_datasets, model_kind: str = "causal_lm"):
    """Concatenate task splits on the columns TRL trains on (tasks carry different bookkeeping columns).

    A VLM trains text-only tasks (`t2i`, `memorize_i2t`) and image tasks together: the text-only rows get an empty
    `images` list, which TRL's vision collator batches with image rows (pixel values only for the rows that have
    an image), so one model learns both directions.
    """
    if not parts:
        return None
    with_images = ["images" in p.column_names for p in parts]
    if any(with_images) and not all(with_images):
        if model_kind != "image_text_to_text":
            raise ValueError(
                "Some of the dataset configs have an `images` column (e.g. `i2t`) but the model is a text-only causal "
                "LM, which cannot take images. Train a VLM (model_kind image_text_to_text), or build the data with "
                "--text-only for a text-only model."
            )
        feature = next(p.features["images"] for p, has in zip(parts, with_images) if has)
        parts = [
            p if has else p.add_column("images", [[] for _ in range(len(p))], feature=feature)
            for p, has in zip(parts, with_images)
        ]
    if len(parts) == 1:
        return parts[0]
    keep = [c for c in _TRAINING_COLUMNS if all(c in p.column_names for p in parts)]
    return concatenate_datasets([p.select_columns(keep) for p in parts])


def _projector(model):
    """The multimodal projector of a VLM (`multi_modal_projector` in LLaVA-style models, `visual.merger` in
    Qwen2-VL)."""
    inner = getattr(model, "model", model)
    for owner in (inner, model):
        projector = getattr(owner, "multi_modal_projector", None)
        if projector is not None:
            return projector
    visual = getattr(inner, "visual", None)
    if visual is not None and getattr(visual, "merger", None) is not None:
        return visual.merger
    raise ValueError(f"--train_only_projector: no multimodal projector found on {type(model).__name__}.")


def _vision_tower(model):
    """The vision encoder of a VLM (`model.model.vision_tower` in LLaVA-style models, `visual` in Qwen2-VL)."""
    inner = getattr(model, "model", model)
    for name in ("vision_tower", "vision_model", "visual"):
        tower = getattr(inner, name, None) or getattr(model, name, None)
        if tower is not None:
            return tower
    logger.warning("No vision tower found on %s: nothing frozen.", type(model).__name__)
    return None


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


def _write_model_card(output_dir, base, model_args, script_args, dataset_args, sid_args, kind, extension) -> None:
    """README.md of the trained model (`semcore_hf.model_cards.model_card`), replacing TRL's / peft's generic card."""
    from semcore_hf._io import atomic_write_text
    from semcore_hf.model_cards import model_card

    if script_args.dataset_name:
        data = [script_args.dataset_name]
    else:
        data = list(dict.fromkeys(d.path for d in (dataset_args.datasets if dataset_args else [])))
    sid_config: dict = {"structure_tokens": extension.tokens, "prompt_format": extension.prompt_format}
    if sid_args.sid_index:
        from semcore_hf.identifiers import SIDIndex

        sid_config.update(SIDIndex.from_pretrained(sid_args.sid_index).config.to_dict())
    base_id = base
    info = preparation(base) if os.path.isdir(os.path.expanduser(base)) else None
    if info is not None:  # trained on a local SID-ready copy: the card names the model it was made from
        base_id = info["base_model"]
    card = model_card(
        name=os.path.basename(os.path.abspath(output_dir)),
        base_model=base_id,
        peft=bool(model_args.use_peft),
        model_kind=kind,
        datasets=data,
        sid_config=sid_config,
        index_id=sid_args.sid_index,
        index_in_repo=bool(sid_args.sid_index),
    )
    atomic_write_text(os.path.join(output_dir, "README.md"), card.content)
