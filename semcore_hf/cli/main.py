"""`semcore-hf`: the whole SemCORE pipeline from a shell.

    semcore-hf build-sids  --source data.json --image-root images/ --output-dir out/sids ...
    semcore-hf train       --config recipes/t2i_causal_lm_lora.yaml
    semcore-hf retrieve    --model out/model --index out/sids/t2i_index --query "a dog on the grass"
    semcore-hf evaluate    --model out/model --index out/sids/t2i_index --dataset out/sids/dataset ...
    semcore-hf demo        --output-dir outputs/demo

Each sub-command lives in its own module (`semcore_hf.cli.<name>`) with `add_parser(subparsers)` and `run(args)`;
modules are imported only when their sub-command runs, so `semcore-hf --help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = {
    "build-sids": ("semcore_hf.cli.build_sids", "Build SIDs (SIDIndex) and the TRL training splits for a dataset."),
    "train": ("semcore_hf.cli.train", "Fine-tune a causal LM or VLM to generate SIDs (trl sft recipe)."),
    "retrieve": ("semcore_hf.cli.retrieve", "Retrieve targets for text or image queries (constrained beam search)."),
    "evaluate": ("semcore_hf.cli.evaluate", "Recall@K / MRR of a trained model on a built SID dataset."),
    "demo": ("semcore_hf.cli.demo", "End-to-end demo on real small models and real data, offline."),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="semcore-hf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="INFO", help="Python logging level (default: INFO).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    # Parse only the command name first, then let the chosen module build its own parser.
    known, rest = parser.parse_known_args(argv)
    if known.command is None:
        parser.print_help()
        return 1
    logging.basicConfig(
        level=getattr(logging, str(known.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(COMMANDS[known.command][0])
    cmd_parser = argparse.ArgumentParser(prog=f"semcore-hf {known.command}", description=COMMANDS[known.command][1])
    module.add_arguments(cmd_parser)
    if getattr(module, "PASS_THROUGH_UNKNOWN", False):
        # e.g. `train`: every flag it does not know goes to TRL's parser (SFTConfig / ModelConfig overrides).
        args, args.overrides = cmd_parser.parse_known_args(rest)
    else:
        args = cmd_parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
