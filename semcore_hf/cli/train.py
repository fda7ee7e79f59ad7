"""`semcore-hf train --config recipes/<recipe>.yaml [--flag value ...]`: SID-ready base model + TRL SFT.

A convenience: `semcore-hf prepare-model` then `trl sft --config recipes/<recipe>.yaml` does the same with TRL's own
CLI. Every `trl sft` flag works here (`--help` lists them), plus `SIDTrainingArguments`'.
"""

from __future__ import annotations

import os

from semcore_hf.cli._args import UsageError, looks_like_local_path


def make_parser(prog: str):
    from semcore_hf.cli._parser import train_parser

    return train_parser(prog)


def run(sid_args, script_args, sft_args, model_args, dataset_args) -> int:
    from semcore_hf.training import train

    # A missing local path would reach huggingface_hub as a malformed repo id; say what is missing instead.
    for flag, value in (("--model_name_or_path", model_args.model_name_or_path),
                        ("--dataset_name", script_args.dataset_name)):  # fmt: skip
        if value and looks_like_local_path(value) and not os.path.exists(os.path.expanduser(value)):
            raise UsageError(f"{flag}: no such folder: {value} (a local path or a Hub id user/name)")
    if sid_args.recall_eval_source and not sid_args.sid_index:
        raise ValueError("--recall_eval_source needs --sid_index (the index of the targets to retrieve).")
    callbacks = [_recall_evaluator(sid_args)] if sid_args.recall_eval_source else []
    out = train(sid_args, script_args, sft_args, model_args, dataset_args, callbacks=callbacks)
    print(f"Trained model written to {out}")
    return 0


def _recall_evaluator(sid_args):
    """The Recall@K evaluator `--recall_eval_source` runs at the end of every epoch."""
    from semcore_hf.evaluation import SIDRetrievalEvaluator
    from semcore_hf.identifiers import SIDIndex

    index = SIDIndex.from_pretrained(sid_args.sid_index)
    return SIDRetrievalEvaluator.from_source(
        sid_args.recall_eval_source,
        index,
        split=sid_args.recall_eval_split,
        image_root=sid_args.recall_eval_image_root,
        max_queries=sid_args.recall_eval_max_queries,
        k=tuple(sid_args.recall_eval_k),
    )
