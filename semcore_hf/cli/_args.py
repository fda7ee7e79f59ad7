"""Argparse helpers shared by the sub-commands (private): flag validators and usage errors.

Only the standard library is imported here, so that parsing (and `--help`) never waits for torch or datasets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import dataclass, field


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


def non_negative_float(value: str) -> float:
    """A finite number >= 0 (nan and inf are refused)."""
    import math

    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}") from None
    if not (x >= 0.0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return x


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(value: str) -> str:
    """A Python logging level name (any case), upper-cased."""
    if value.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.upper()


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
    """Write the Python keywords of flags in an error message as the flags: ``gsv_weight`` -> ``--gsv-weight``.

    Rewritten: ``Cls(name=value)``, ``Cls.name``, ``name=value`` and bare names with an underscore; a bare one-word
    name such as ``seed`` is too common a word to rewrite.
    """
    flags = {}
    for action in parser._actions:
        if action.option_strings and action.dest != "help" and action.dest not in flags:
            longs = [o for o in action.option_strings if o.startswith("--")]
            dashed = [o for o in longs if "_" not in o]  # HfArgumentParser also registers `--a_b` for `--a-b`
            flags[action.dest] = (dashed or longs or action.option_strings)[-1 if dashed else 0]

    def call(m: re.Match) -> str:
        return f"{flags[m[1]]} {m[2]}" if m[1] in flags else m[0]

    message = re.sub(r"\b[A-Z]\w*\((\w+)=([^,()]*)\)", call, message)  # SIDConfig(num_clusters=3)
    message = re.sub(r"\b[A-Z]\w*\.(\w+)\b", lambda m: flags.get(m[1], m[0]), message)  # SIDConfig.num_clusters
    message = re.sub(  # gsv_weight=-1, k=20
        r"(?<![\w.-])(\w+)=(?=[\w.'\"\[(-])", lambda m: f"{flags[m[1]]} " if m[1] in flags else m[0], message
    )
    return re.sub(r"(?<![\w.-])(\w+_\w+)\b", lambda m: flags.get(m[1], m[0]), message)  # num_beams


@dataclass
class SearchArguments:
    """The constrained-search flags `semcore-hf retrieve` and `semcore-hf evaluate` share (one argument group)."""

    _argument_group_name = "constrained search"

    num_beams: int | None = field(
        default=None,
        metadata={"help": "Beams of the constrained search (default: the largest k).", "type": positive_int},
    )
    max_num_beams: int | None = field(
        default=None,
        metadata={
            "help": "Most beams the exact search may widen to for a query it cannot certify (default: "
            "max(4 x beams, 32)).",
            "type": positive_int,
        },
    )
    certify: int | None = field(
        default=None,
        metadata={
            "help": "Widen the search until this many leading ranks are certified exact (default: 1).",
            "type": positive_int,
        },
    )
    batch_size: int = field(default=8, metadata={"help": "Queries per batch.", "type": positive_int})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)."})
    autocast: str = field(
        default="none",
        metadata={
            "help": "bf16 / fp16: the model body under torch.autocast, the output head in fp32 (search and GSV); "
            "faster on GPUs and CPUs with AVX512-BF16 or AMX, scores move by the body's rounding. none: fp32.",
            "choices": ["none", "bf16", "fp16"],
        },
    )
