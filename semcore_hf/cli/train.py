"""`semcore-hf train --config recipes/<recipe>.yaml [--flag value ...]`: SID-ready base model + TRL SFT."""

from __future__ import annotations

import argparse
import os

from semcore_hf.cli._args import UsageError, existing_file, looks_like_local_path

PASS_THROUGH_UNKNOWN = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        type=existing_file,
        help="A recipe YAML (see recipes/). Any other flag (e.g. --max_steps 10) overrides the YAML; the flags are "
        "those of trl sft (SFTConfig, ModelConfig, ScriptArguments) plus SIDTrainingArguments.",
    )


def _usage_error(message: str):
    raise UsageError(message)


def run(args: argparse.Namespace) -> int:
    from semcore_hf.training import make_parser, train

    parser = make_parser(prog="semcore-hf train")
    parser.error = _usage_error  # one line through `semcore-hf`, not TRL's usage text and exit
    try:
        sid_args, script_args, sft_args, model_args, dataset_args = parser.parse_args_and_config(
            ["--config", args.config, *args.overrides]
        )
    except UsageError:
        raise
    except (ValueError, TypeError) as e:  # unknown flags or recipe keys, bad values
        raise UsageError(f"{e} (recipe: {args.config})") from e
    # A missing local path would reach huggingface_hub as a malformed repo id; say what is missing instead.
    for flag, value in (("--model_name_or_path", model_args.model_name_or_path),
                        ("--dataset_name", script_args.dataset_name)):  # fmt: skip
        if value and looks_like_local_path(value) and not os.path.exists(os.path.expanduser(value)):
            raise UsageError(f"{flag}: no such folder: {value} (a local path or a Hub id user/name)")
    out = train(sid_args, script_args, sft_args, model_args, dataset_args)
    print(f"Trained model written to {out}")
    return 0
