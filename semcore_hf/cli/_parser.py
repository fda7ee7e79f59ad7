"""The one parser of every `semcore-hf` sub-command (private): `transformers.HfArgumentParser` over dataclasses.

Each sub-command declares its flags as dataclass fields (`metadata={"help": ...}`), exactly like TRL's scripts; the
parser adds `--config` (a YAML file of the same keys; flags on the command line override it), the global flags
(`--log-level`, `--debug`) and one-line usage errors. Both spellings of a flag work (`--num_beams`, `--num-beams`);
an error names the flag as the user spelled it.

Field metadata understood on top of `HfArgumentParser`'s (`help`, `aliases`, `choices`, `metavar`, `nargs`, ...):
`"type"`, an argparse `type=` callable that checks and converts each value (`semcore_hf.cli._args.positive_int`, ...)
so bad values are refused before anything is loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from transformers import HfArgumentParser

from semcore_hf.cli._args import UsageError, flag_names, log_level

_ALTERNATIVES = re.compile(r"(?<![\w/])-{1,2}[A-Za-z][\w-]*(?:/-{1,2}[A-Za-z][\w-]*)+")


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class _OneLineErrors:
    """One-line usage errors naming each flag as the user typed it (mixed into an `HfArgumentParser`)."""

    _argv: Sequence[str] = ()

    def _preferred(self, alternatives: str) -> str:
        options = alternatives.split("/")
        typed = [o for o in options if o in self._argv]
        return typed[0] if typed else options[-1]

    def error(self, message: str) -> typing.NoReturn:
        message = _ALTERNATIVES.sub(lambda m: self._preferred(m[0]), _one_line(message))
        self.exit(2, f"{self.prog}: error: {message}\n")

    def _usage_error(self, e: Exception) -> UsageError:
        message = flag_names(_one_line(e), self)
        return UsageError(_ALTERNATIVES.sub(lambda m: self._preferred(m[0]), message))

    def _config_path(self, argv: Sequence[str]) -> str | None:
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--config")
        known, _ = pre.parse_known_args(list(argv))
        if known.config is not None and not os.path.isfile(os.path.expanduser(known.config)):
            self.error(f"argument --config: no such file: {known.config}")
        return known.config


class _CommandParserMixin(_OneLineErrors):
    """`--config` YAML and checked value types on top of the one-line errors (mixed into HfArgumentParser)."""

    _field_types: dict[str, Callable[[str], Any]] = {}

    def _parse_dataclass_field(self, parser: Any, field: dataclasses.Field) -> None:
        meta = dict(field.metadata)
        check = meta.pop("type", None) or self._field_types.get(field.name)
        hint = field.type
        args = typing.get_args(hint)
        union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        plain = [a for a in args if a is not type(None)]
        if typing.get_origin(hint) is tuple or (union and len(plain) > 1 and bool not in plain):
            # HfArgumentParser takes neither fixed-length tuples nor unions of several types: a tuple is `nargs=N`,
            # a union (`str | list[str]`) is read as a string that `check` (or the dataclass) interprets.
            options = [f"--{field.name}", *([f"--{field.name.replace('_', '-')}"] if "_" in field.name else [])]
            aliases = meta.pop("aliases", [])
            kwargs = dict(meta)
            if typing.get_origin(hint) is tuple:
                kwargs.update(nargs=len(args), type=check or args[0], action=_TupleAction)
            else:
                kwargs["type"] = check or str
            if field.default is not dataclasses.MISSING:
                kwargs["default"] = field.default
            elif field.default_factory is not dataclasses.MISSING:
                kwargs["default"] = field.default_factory()
            else:
                kwargs["required"] = True
            parser.add_argument(*options, *([aliases] if isinstance(aliases, str) else aliases), **kwargs)
            return
        if check is not None:
            field = _with_metadata(field, meta)
        HfArgumentParser._parse_dataclass_field(parser, field)
        if check is not None:
            for action in self._actions:
                if action.dest == field.name and action.option_strings[0] == f"--{field.name}":
                    action.type = check

    def add_global_flags(self) -> None:
        """`--config`, `--log-level` and `--debug` (the latter two default to the top-level parser's values)."""
        group = self.add_argument_group("global options")
        group.add_argument(
            "--config",
            metavar="YAML",
            help="A YAML file of these flags' values (keys as the flags, with underscores); flags override it.",
        )
        group.add_argument(
            "--log-level", "--log_level", type=log_level, default=None, help="Python logging level (INFO)."
        )
        group.add_argument(
            "--debug",
            action="store_true",
            default=None,
            help="Show the full traceback of an error instead of one line.",
        )

    def parse_command(self, argv: Sequence[str]) -> tuple[list[Any], argparse.Namespace]:
        """Parse `argv` (after the sub-command's name), reading `--config` first.

        Returns:
            `(dataclass instances, namespace of the global flags)`.

        Raises:
            `UsageError`: a dataclass refused a value (the message names the flag).
        """
        self._argv = list(argv)
        config = self._config_path(self._argv)
        if config:
            self._apply_config(config)
        try:
            *instances, namespace = self.parse_args_into_dataclasses(args=self._argv, look_for_args_file=False)
        except (ValueError, TypeError) as e:  # a dataclass's __post_init__ refused a combination of values
            raise self._usage_error(e) from e
        if not isinstance(namespace, argparse.Namespace):  # every flag belongs to a dataclass
            instances, namespace = [*instances, namespace], argparse.Namespace()
        return instances, namespace

    def _apply_config(self, path: str) -> None:
        import yaml

        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                config = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            self.error(f"argument --config: cannot read {path} ({type(e).__name__}: {e})")
        if not isinstance(config, dict):
            self.error(f"argument --config: {path} must hold a mapping of flag names to values")
        dests = {a.dest: a for a in self._actions if a.option_strings}
        config = {str(k).replace("-", "_"): v for k, v in config.items()}
        unknown = sorted(set(config) - set(dests) - {"config"})
        if unknown:
            self.error(f"argument --config: {path} has unknown keys {unknown}")
        for dest, value in config.items():
            action = dests.get(dest)
            if action is None:
                continue
            if value is not None:  # the checks the command line would have made
                values = value if isinstance(value, list) else [value]
                try:
                    if action.type is not None:
                        values = [action.type(v) for v in values]
                except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
                    self.error(f"argument --config: {dest} in {path}: {e}")
                bad = [v for v in values if action.choices is not None and v not in action.choices]
                if bad:
                    self.error(f"argument --config: {dest} in {path}: {bad[0]!r} is not one of {list(action.choices)}")
                value = values if isinstance(value, list) else values[0]
                if isinstance(action, _TupleAction):
                    value = tuple(value)
            action.default = value
            action.required = False


class _TupleAction(argparse.Action):
    """Stores a fixed number of values as a tuple (what a `tuple[int, int]` field holds), not argparse's list."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, tuple(values))


def _with_metadata(field: dataclasses.Field, metadata: dict[str, Any]) -> dataclasses.Field:
    """A copy of `field` with other metadata (HfArgumentParser passes metadata to `add_argument` as is)."""
    new = dataclasses.field(default=field.default, default_factory=field.default_factory, metadata=metadata)
    new.name, new.type = field.name, field.type
    return new


class CommandParser(_CommandParserMixin, HfArgumentParser):
    """`HfArgumentParser` over a sub-command's dataclasses, with `semcore-hf`'s `--config` and error behaviour.

    Args:
        dataclass_types (`Iterable[type]`): the sub-command's argument dataclasses.
        prog (`str`): e.g. `"semcore-hf retrieve"`.
        description (`str`, *optional*): shown by `--help`.
        field_types (`dict[str, Callable]`, *optional*): argparse `type=` callables of fields whose dataclass is
            not the command's own (e.g. `SIDConfig.stop_words`, which the CLI also reads from a file).
    """

    def __init__(
        self,
        dataclass_types: Iterable[type],
        prog: str,
        description: str | None = None,
        field_types: dict[str, Callable[[str], Any]] | None = None,
    ) -> None:
        self._field_types = dict(field_types or {})
        super().__init__(list(dataclass_types), prog=prog, description=description)
        self.add_global_flags()


def train_parser(prog: str):
    """The parser of `semcore-hf train`: TRL's own `TrlParser` (what `trl sft` parses: `ScriptArguments`, `SFTConfig`,
    `ModelConfig`, `DatasetMixtureConfig`, and its `--config` recipe handling) plus `SIDTrainingArguments`."""
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser

    from semcore_hf.training.config import SIDTrainingArguments

    class TrainParser(_OneLineErrors, TrlParser):
        def parse_command(self, argv: Sequence[str]) -> tuple[list[Any], argparse.Namespace]:
            # A bare `--debug` is semcore-hf's (tracebacks); `--debug <option>` is TrainingArguments'.
            argv, debug = list(argv), False
            if "--config" in argv[:-1]:  # a shipped recipe by name (an installed wheel has no recipes/ folder)
                i = argv.index("--config") + 1
                if not os.path.exists(os.path.expanduser(argv[i])) and os.path.basename(argv[i]) == argv[i]:
                    from semcore_hf.training.recipes import list_recipes, recipe_path

                    if argv[i] in list_recipes():
                        argv[i] = str(recipe_path(argv[i]))
            for i in reversed(range(len(argv))):
                if argv[i] == "--debug" and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
                    del argv[i]
                    debug = True
            self._argv = argv
            config = self._config_path(argv)
            try:
                instances = list(self.parse_args_and_config(argv))
            except (ValueError, TypeError) as e:  # unknown flags or recipe keys, bad values
                error = self._usage_error(e)
                raise UsageError(f"{error} (recipe: {config})" if config else str(error)) from e
            namespace = instances.pop() if isinstance(instances[-1], argparse.Namespace) else argparse.Namespace()
            namespace.debug = debug
            return instances, namespace

    parser = TrainParser(
        (SIDTrainingArguments, ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig),
        prog=prog,
        description="Make the base model SID-ready (unless it is) and train it with TRL's SFTTrainer on a recipe.",
    )
    # No --log-level here: SFTConfig's `log_level` (transformers' verbosity) owns it; `semcore-hf --log-level X train`
    # sets Python's. Nor --debug: a bare `--debug` is taken out of the flags before TRL parses them (TrainingArguments
    # has a `--debug <option>` of its own).
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config",
        metavar="YAML",
        help="The recipe: any trl sft YAML, or the name of a shipped one (t2i_causal_lm_lora.yaml, ...); flags "
        "override its keys.",
    )
    return parser
