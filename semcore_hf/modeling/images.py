"""`open_image`: the one way every step of the pipeline turns an image (or its path) into the pixels a model sees."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any


def open_image(image: Any, name: str = "image") -> Any:
    """An RGB `PIL.Image.Image` from a PIL image, a path, or a `datasets` image dict (`{"bytes", "path"}`).

    Transparency (an alpha band, or a palette's transparent colour) is composited onto white, exactly as
    `transformers.image_transforms.convert_to_rgb` does inside the image processors that TRL's collator calls during
    training. A plain `.convert("RGB")` would instead turn transparent pixels black (clip art, stamps and icons are
    mostly transparent), so a model would see different pixels at inference than in training.

    Args:
        image (`PIL.Image.Image`, `str`, `os.PathLike` or `dict`):
            The image, its file path, or a `datasets.Image(decode=False)` value.
        name (`str`, *optional*, defaults to `"image"`):
            How to call the image in error messages (e.g. `"query_images[3]"`).

    Returns:
        `PIL.Image.Image` in mode `"RGB"`, fully decoded.

    Raises:
        ValueError: the file is missing, truncated or not an image (the message names it).
        TypeError: `image` is none of the accepted types.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return _to_rgb(image)
    if isinstance(image, Mapping) and ("bytes" in image or "path" in image):
        if image.get("bytes") is not None:
            return _decode(io.BytesIO(image["bytes"]), f"{name} (embedded bytes of {image.get('path')!r})")
        image = image.get("path")
    if isinstance(image, (str, os.PathLike)):
        return _decode(os.fspath(image), f"{name} ({os.fspath(image)!r})")
    if image is None:
        raise ValueError(f"{name} is None; an image or the path of one is required.")
    raise TypeError(f"{name} must be a PIL image, a path or a datasets image dict, got {type(image).__name__}.")


def _decode(source: Any, label: str) -> Any:
    from PIL import Image

    try:
        with Image.open(source) as im:
            im.load()  # decode everything now: a truncated file fails here, naming it, not deep inside a batch
            rgb = _to_rgb(im)
            return im.copy() if rgb is im else rgb  # closing the file releases `im` itself
    except FileNotFoundError as e:
        raise ValueError(f"Cannot read {label}: no such file.") from e
    except Exception as e:  # PIL raises several types (UnidentifiedImageError, OSError, SyntaxError, ValueError)
        raise ValueError(f"Cannot read {label}: {type(e).__name__}: {e}") from e


def _to_rgb(image: Any) -> Any:
    from PIL import Image

    if image.mode == "RGB":
        return image
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
