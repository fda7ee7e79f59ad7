"""Models and their processors: what kind a model is, how its prompts are encoded and how images are opened.

Every step that feeds a model (training data checks, retrieval, verification, captioning) goes through these
functions, so the token ids and pixels a model sees at inference are the ones it was trained on.
"""

from semcore_hf.modeling.images import open_image
from semcore_hf.modeling.inputs import encode_prompts, get_tokenizer, is_vlm, render_prompt, to_text_only

__all__ = ["encode_prompts", "get_tokenizer", "is_vlm", "open_image", "render_prompt", "to_text_only"]
