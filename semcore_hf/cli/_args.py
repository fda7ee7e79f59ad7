"""Argparse helpers shared by the sub-commands (private)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "", skip: tuple = ()) -> None:
    """Add one `--flag` per field of the dataclass `cls`, typed and documented from the field's `metadata["help"]`.

    Defaults are `None` so that `dataclass_from_args` only passes what the user set and the dataclass keeps its own
    defaults (and its validation) for the rest.
    """
    group = parser.add_argument_group(cls.__name__)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        hint = hints[f.name]
        args = typing.get_args(hint)
        kwargs: dict = {
            "dest": prefix.replace("-", "_") + f.name,
            "default": None,
            "help": f"{help_text} (default: {default})",
        }
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is tuple:
            kwargs.update(nargs=len(args), type=args[0])
        elif hint in (int, float, str):
            kwargs["type"] = hint
        elif isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            scalar = [a for a in args if a in (int, float, str)]
            kwargs["type"] = scalar[0] if scalar else str
        else:
            kwargs["type"] = str
        group.add_argument(flag, **kwargs)


def dataclass_from_args(cls: type, args: argparse.Namespace, prefix: str = "", **overrides):
    """Instantiate `cls` from the flags `add_dataclass_arguments` added (unset flags keep the dataclass defaults)."""
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, prefix.replace("-", "_") + f.name, None)
        if value is not None:
            values[f.name] = tuple(value) if isinstance(value, list) else value
    values.update(overrides)
    return cls(**values)
