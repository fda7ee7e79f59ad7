"""Models and their processors: loading them, what kind a model is, how its prompts are encoded, how images open.

Every step that feeds a model (training data checks, retrieval, verification, captioning) goes through these
functions, so the token ids and pixels a model sees at inference are the ones it was trained on.
"""

from semcore_hf.modeling.images import open_image
from semcore_hf.modeling.inputs import encode_prompts, get_tokenizer, is_vlm, left_pad, render_prompt, to_text_only
from semcore_hf.modeling.loading import detect_model_kind, load_model_and_processor, load_trained_model
from semcore_hf.modeling.precision import autocast_inference

__all__ = [
    "autocast_inference",
    "detect_model_kind",
    "encode_prompts",
    "get_tokenizer",
    "is_vlm",
    "left_pad",
    "load_model_and_processor",
    "load_trained_model",
    "open_image",
    "render_prompt",
    "to_text_only",
]
