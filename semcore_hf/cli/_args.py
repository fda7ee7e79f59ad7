"""Argparse helpers shared by the sub-commands (private): flag validators, usage errors, dataclass flags.

Only the standard library is imported here, so that parsing (and `--help`) never waits for torch or datasets.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import types
import typing


class UsageError(ValueError):
    """A bad flag value or combination found after parsing; `semcore-hf` prints it as a usage error (exit 2)."""


# -- flag value validators (argparse `type=`): argparse reports them as "argument --flag: <message>" -----------------


def positive_int(value: str) -> int:
    """An integer >= 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def non_negative_int(value: str) -> int:
    """An integer >= 0."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value!r}")
    return n


def positive_float(value: str) -> float:
    """A finite number > 0."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return x


def unit_float(value: str) -> float:
    """A number in [0, 1] (nan is refused)."""
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from None
    if not 0.0 <= x <= 1.0:  # also False for nan
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}")
    return x


def non_empty_str(value: str) -> str:
    """A string with a non-whitespace character."""
    if not value.strip():
        raise argparse.ArgumentTypeError("expected a non-empty value")
    return value


def existing_file(value: str) -> str:
    """The path of an existing file (`~` expanded)."""
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"not a file: {value}" if os.path.exists(path) else f"no such file: {value}")
    return path


def existing_dir(value: str) -> str:
    """The path of an existing folder (`~` expanded)."""
    path = os.path.expanduser(value)
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(
            f"not a folder: {value}" if os.path.exists(path) else f"no such folder: {value}"
        )
    return path


def existing_path(value: str) -> str:
    """The path of an existing file or folder (`~` expanded)."""
    path = os.path.expanduser(value)
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError(f"no such file or folder: {value}")
    return path


def looks_like_local_path(value: str) -> bool:
    """Whether `value` can only be a local path, never a Hub id ``name`` or ``user/name``.

    True for ``./x``, ``../x``, absolute paths, ``~/x``, ``x/`` (a folder separator at the end) and anything with
    two or more separators (``outputs/sids/t2i_index``).
    """
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (
        value in (".", "..", "~")
        or value.startswith(("./", "../", "~", f".{os.sep}", f"..{os.sep}"))
        or os.path.isabs(value)
        or any(value.endswith(sep) for sep in seps)
        or sum(value.count(sep) for sep in seps if sep != "/") + value.count("/") > 1
    )


def local_or_hub(value: str) -> str:
    """A local folder or a Hub id; a string that can only be a local path must name an existing folder.

    Without this, `from_pretrained` treats a missing local path as a Hub id and fails with huggingface_hub's
    "Repo id must be in the form ...", which does not say that the folder is missing.
    """
    if not value.strip():
        raise argparse.ArgumentTypeError("expected a local folder or a Hub id user/name, got an empty value")
    path = os.path.expanduser(value)
    if os.path.isdir(path):
        return path
    if os.path.exists(path):
        raise argparse.ArgumentTypeError(f"not a folder: {value} (a local folder or a Hub id user/name)")
    if looks_like_local_path(value):
        raise argparse.ArgumentTypeError(f"no such folder: {value} (a local path or a Hub id user/name)")
    return value


def read_json_object(path: str, flag: str) -> dict:
    """Load a JSON object from `path`, or raise a `UsageError` naming `flag`."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{flag} {path}: not a readable JSON file ({e})") from e
    if not isinstance(data, dict):
        raise UsageError(f"{flag} {path}: expected a JSON object {{id: text}}, got a {type(data).__name__}")
    return data


def flag_names(message: str, parser: argparse.ArgumentParser) -> str:
    """Write the Python keywords of flags in an error message as the flags: ``gsv_alpha`` -> ``--gsv-alpha``.

    Rewritten: ``Cls(name=value)``, ``Cls.name``, ``name=value`` and bare names with an underscore; a bare one-word
    name such as ``seed`` is too common a word to rewrite.
    """
    flags = {}
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            longs = [o for o in action.option_strings if o.startswith("--")]
            flags[action.dest] = (longs or action.option_strings)[0]

    def call(m: re.Match) -> str:
        return f"{flags[m[1]]} {m[2]}" if m[1] in flags else m[0]

    message = re.sub(r"\b[A-Z]\w*\((\w+)=([^,()]*)\)", call, message)  # SIDConfig(num_clusters=3)
    message = re.sub(r"\b[A-Z]\w*\.(\w+)\b", lambda m: flags.get(m[1], m[0]), message)  # SIDConfig.num_clusters
    message = re.sub(  # gsv_alpha=2, k=20
        r"(?<![\w.-])(\w+)=(?=[\w.'\"\[(-])", lambda m: f"{flags[m[1]]} " if m[1] in flags else m[0], message
    )
    return re.sub(r"(?<![\w.-])(\w+_\w+)\b", lambda m: flags.get(m[1], m[0]), message)  # num_beams


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
    """Instantiate `cls` from the flags `add_dataclass_arguments` added (unset flags keep the dataclass defaults).

    Raises:
        `UsageError`: the dataclass refuses a value; the message names the flag (``--num-clusters``), not the field.
    """
    values = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, prefix.replace("-", "_") + f.name, None)
        if value is not None:
            values[f.name] = tuple(value) if isinstance(value, list) else value
    values.update(overrides)
    try:
        return cls(**values)
    except (ValueError, TypeError) as e:
        names = {f.name: "--" + prefix + f.name.replace("_", "-") for f in dataclasses.fields(cls)}
        message = re.sub(rf"\b{cls.__name__}\.(\w+)\b", lambda m: names.get(m[1], m[0]), str(e))
        message = re.sub(r"\b(\w+_\w+)\b", lambda m: names.get(m[1], m[0]), message)
        raise UsageError(message) from e
