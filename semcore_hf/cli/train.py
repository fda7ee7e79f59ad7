"""`semcore-hf train --config recipes/<recipe>.yaml [--flag value ...]`: SID-ready base model + TRL SFT."""

from __future__ import annotations

import argparse
import os

PASS_THROUGH_UNKNOWN = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        help="A recipe YAML (see recipes/). Any other flag (e.g. --max_steps 10) overrides the YAML; the flags are "
        "those of trl sft (SFTConfig, ModelConfig, ScriptArguments) plus SIDTrainingArguments.",
    )


def run(args: argparse.Namespace) -> int:
    from semcore_hf.training import make_parser, train

    if not os.path.isfile(args.config):
        raise FileNotFoundError(f"Recipe not found: {args.config}")
    parser = make_parser(prog="semcore-hf train")
    sid_args, script_args, sft_args, model_args, dataset_args = parser.parse_args_and_config(
        ["--config", args.config, *args.overrides]
    )
    out = train(sid_args, script_args, sft_args, model_args, dataset_args)
    print(f"Trained model written to {out}")
    return 0
