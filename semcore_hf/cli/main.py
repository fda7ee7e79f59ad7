"""`semcore-hf`: the whole SemCORE pipeline from a shell.

    semcore-hf build-sids     --source data.json --image-root images/ --output-dir out/sids ...
    semcore-hf prepare-model  --model_name_or_path HuggingFaceTB/SmolLM2-135M-Instruct --output_dir out/sid_ready
    trl sft                   --config recipes/t2i_causal_lm_lora.yaml      # TRL's own CLI, or:
    semcore-hf train          --config recipes/t2i_causal_lm_lora.yaml      # prepare + trl sft in one step
    semcore-hf push-to-hub    --model_dir out/t2i_lora --repo_id user/semcore-t2i --index out/sids/t2i_index
    semcore-hf retrieve       --model user/semcore-t2i --query "a dog on the grass"
    semcore-hf evaluate       --model out/model --index out/sids/t2i_index --source data.json ...
    semcore-hf env            (versions, for bug reports)
    semcore-hf demo           --output-dir outputs/demo

Each sub-command lives in its own module (`semcore_hf.cli.<name>`): `make_parser(prog)` returns an
`HfArgumentParser` over its argument dataclasses (with `--config` YAML) and `run(*arguments)` runs it (`demo` keeps
an argparse `add_arguments(parser)` / `run(args)`). Modules are imported only when their sub-command runs, so
`semcore-hf --help` is instant.

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

from semcore_hf.cli._args import log_level

COMMANDS = {
    "build-sids": ("semcore_hf.cli.build_sids", "Build SIDs (SIDIndex) and the TRL training splits for a dataset."),
    "prepare-model": (
        "semcore_hf.cli.prepare_model",
        "Make a base model SID-ready (structure tokens, embeddings) for `trl sft`.",
    ),
    "train": ("semcore_hf.cli.train", "prepare-model + TRL SFT on a recipe, in one step (any trl sft flag)."),
    "push-to-hub": (
        "semcore_hf.cli.push_to_hub",
        "Push a trained model or adapter with its tokenizer, SID index and card.",
    ),
    "retrieve": ("semcore_hf.cli.retrieve", "Retrieve targets for text or image queries (constrained beam search)."),
    "evaluate": ("semcore_hf.cli.evaluate", "Recall@K / MRR of a trained model on a built SID dataset."),
    "env": ("semcore_hf.cli.env", "Print the versions of Python, semcore_hf and its stack (for bug reports)."),
    "demo": ("semcore_hf.cli.demo", "End-to-end demo on real small models and real data, offline."),
}


class _Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line, ``<prog>: error: <message>`` (exit status 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _add_global_flags(parser: argparse.ArgumentParser, defaults: bool) -> None:
    # On the top-level parser and on each command's, so `semcore-hf --debug retrieve ...` and
    # `semcore-hf retrieve ... --debug` both work; the command's copies default to None (= the top-level value).
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--log-level", type=log_level, default="INFO" if defaults else None, help="Python logging level (INFO)."
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
    prog, description = f"semcore-hf {known.command}", COMMANDS[known.command][1]
    from semcore_hf.cli._args import UsageError, flag_names

    if hasattr(module, "add_arguments"):  # `demo`: a plain argparse command
        cmd_parser = _Parser(prog=prog, description=description)
        module.add_arguments(cmd_parser)
        _add_global_flags(cmd_parser, defaults=False)
        args = cmd_parser.parse_args(rest)
        arguments, flags = (args,), args
    else:
        cmd_parser = module.make_parser(prog)
        try:
            arguments, flags = cmd_parser.parse_command(rest)
        except UsageError as e:
            if known.debug or "--debug" in rest:
                raise
            cmd_parser.error(str(e))
    debug = bool(known.debug or flags.debug)
    logging.basicConfig(
        level=getattr(logging, getattr(flags, "log_level", None) or known.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if hasattr(module, "add_arguments"):
        args.debug = debug

    try:
        return int(module.run(*arguments) or 0)
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
