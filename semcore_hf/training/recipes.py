"""The shipped recipes (`recipes/*.yaml`, `recipes/accelerate/*.yaml`), installed with the package.

In a source checkout they are the repository's `recipes/` folder (`trl sft --config recipes/<name>.yaml`); in an
installed wheel they are package data (`semcore_hf/recipes/`), so a command can find them by name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def recipes_dir() -> Path:
    """The folder of the shipped recipes."""
    return Path(str(resources.files("semcore_hf").joinpath("recipes")))


def list_recipes() -> list[str]:
    """Names of the shipped training recipes (`accelerate/` launch configs excluded)."""
    return sorted(p.name for p in recipes_dir().glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """The path of the shipped recipe `name` (`"t2i_causal_lm_lora.yaml"`, or `"accelerate/multi_gpu_ddp.yaml"`).

    Raises:
        FileNotFoundError: no shipped recipe has that name (the message lists them).
    """
    path = recipes_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"No shipped recipe {name!r}; the recipes are {list_recipes()}.")
    return path
