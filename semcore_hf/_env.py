"""Versions of the stack `semcore_hf` runs on: for bug reports (`semcore-hf env`) and for the model cards."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

# Distribution names, in the order a bug report lists them.
STACK = (
    "semcore_hf",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "datasets",
    "trl",
    "peft",
    "accelerate",
    "huggingface-hub",
    "sentence-transformers",
    "scikit-learn",
    "scipy",
    "numpy",
    "pillow",
    "pyarrow",
)
OPTIONAL = ("evaluate", "matplotlib", "deepspeed", "keybert")
# What a trained model's card records: the packages whose versions change the trained weights or their loading.
CARD_STACK = ("semcore_hf", "transformers", "trl", "peft", "torch", "datasets", "tokenizers", "huggingface-hub")


def package_version(name: str) -> str | None:
    """The installed version of the distribution `name`, `None` if it is not installed (nothing is imported)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def framework_versions(names: tuple[str, ...] = CARD_STACK) -> dict[str, str]:
    """`{distribution: version}` of the installed ones among `names`."""
    return {name: v for name in names if (v := package_version(name)) is not None}


def environment_report() -> dict[str, object]:
    """Python, platform, the stack's versions (`"not installed"` for missing optional ones) and the accelerators."""
    report: dict[str, object] = {"python": sys.version.split()[0], "platform": platform.platform()}
    report["packages"] = {name: package_version(name) or "not installed" for name in (*STACK, *OPTIONAL)}
    try:
        import torch

        report["cuda_available"] = torch.cuda.is_available()
        report["cuda"] = torch.version.cuda
        report["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        report["mps_available"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        report["cuda_available"] = False
    return report
