"""`semcore-hf`: the whole SemCORE pipeline from a shell.

    semcore-hf build-sids  --source data.json --image-root images/ --output-dir out/sids ...
    semcore-hf train       --config recipes/t2i_causal_lm_lora.yaml
    semcore-hf retrieve    --model out/model --index out/sids/t2i_index --query "a dog on the grass"
    semcore-hf evaluate    --model out/model --index out/sids/t2i_index --dataset out/sids/dataset ...
    semcore-hf demo        --output-dir outputs/demo

Each sub-command lives in its own module (`semcore_hf.cli.<name>`) with `add_arguments(parser)` and `run(args)`;
modules are imported only when their sub-command runs, so `semcore-hf --help` is instant.

Errors are one line, ``semcore-hf <command>: error: <message>``, naming the flag: exit status 2 for a bad flag value
or combination (checked before any model, data or image is loaded), 1 for a failure while running. `--debug` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import typing

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

COMMANDS = {
    "build-sids": ("semcore_hf.cli.build_sids", "Build SIDs (SIDIndex) and the TRL training splits for a dataset."),
    "train": ("semcore_hf.cli.train", "Fine-tune a causal LM or VLM to generate SIDs (trl sft recipe)."),
    "retrieve": ("semcore_hf.cli.retrieve", "Retrieve targets for text or image queries (constrained beam search)."),
    "evaluate": ("semcore_hf.cli.evaluate", "Recall@K / MRR of a trained model on a built SID dataset."),
    "demo": ("semcore_hf.cli.demo", "End-to-end demo on real small models and real data, offline."),
}


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line, ``<prog>: error: <message>`` (exit status 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.upper()


def _add_global_flags(parser: argparse.ArgumentParser, defaults: bool) -> None:
    # On the top-level parser and on each command's, so `semcore-hf --debug retrieve ...` and
    # `semcore-hf retrieve ... --debug` both work; the command's copies default to None (= the top-level value).
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--log-level", type=_log_level, default="INFO" if defaults else None, help="Python logging level (INFO)."
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=False if defaults else None,
        help="Show the full traceback of an error instead of one line.",
    )


def main(argv: list[str] | None = None) -> int:
    """Run `semcore-hf` with `argv` (default: `sys.argv[1:]`); returns the exit status.

    Usage errors raise `SystemExit(2)` after printing one line (as argparse does); other errors print one line and
    return 1, or propagate with `--debug`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="semcore-hf", description=__doc__.split("\n\n")[0])
    _add_global_flags(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    # Parse only the command name first, then let the chosen module build its own parser.
    known, rest = parser.parse_known_args(argv)
    if known.command is None:
        parser.print_help()
        return 1
    module = importlib.import_module(COMMANDS[known.command][0])
    cmd_parser = _Parser(prog=f"semcore-hf {known.command}", description=COMMANDS[known.command][1])
    module.add_arguments(cmd_parser)
    _add_global_flags(cmd_parser, defaults=False)
    if getattr(module, "PASS_THROUGH_UNKNOWN", False):
        # e.g. `train`: every flag it does not know goes to TRL's parser (SFTConfig / ModelConfig overrides).
        args, args.overrides = cmd_parser.parse_known_args(rest)
    else:
        args = cmd_parser.parse_args(rest)
    debug = bool(known.debug or args.debug)
    args.debug = debug
    logging.basicConfig(
        level=getattr(logging, args.log_level or known.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from semcore_hf.cli._args import UsageError, flag_names

    try:
        return int(module.run(args) or 0)
    except UsageError as e:
        if debug:
            raise
        cmd_parser.error(flag_names(str(e), cmd_parser))
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{cmd_parser.prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        message = flag_names(_one_line(e) or type(e).__name__, cmd_parser)
        if not isinstance(e, (ValueError, OSError, KeyError)):
            message = f"{type(e).__name__}: {message}"
        print(f"{cmd_parser.prog}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
