import pytest
from PIL import Image

from semcore_hf.identifiers import caption_images


@pytest.fixture(scope="module")
def llava(tiny_llava_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_llava_dir).eval()
    return model, AutoProcessor.from_pretrained(tiny_llava_dir)


def _images():
    colours = [(200, 30, 30), (20, 180, 40), (30, 30, 220), (240, 240, 10), (0, 0, 0)]
    sizes = [(64, 48), (32, 32), (80, 40), (40, 90), (50, 50)]
    return [Image.new("RGB", s, c) for s, c in zip(sizes, colours)]


def test_captions_are_strings_and_batching_invariant(llava, tmp_path):
    model, proc = llava
    images = _images()
    path = tmp_path / "img.png"
    images[0].save(path)
    images = [str(path)] + images[1:]  # paths and PIL images mix
    side = proc.tokenizer.padding_side
    batched = caption_images(images, model, proc, batch_size=3, max_new_tokens=6, show_progress=False)
    single = caption_images(images, model, proc, batch_size=1, max_new_tokens=6, show_progress=False)
    assert len(batched) == len(images) and all(isinstance(c, str) for c in batched)
    assert batched == single
    assert proc.tokenizer.padding_side == side  # restored after captioning


def test_unreadable_image_is_named(llava, tmp_path):
    model, proc = llava
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"Cannot read images\[1\] \('.*broken.jpg'\)"):
        caption_images([_images()[0], str(bad)], model, proc, batch_size=2, max_new_tokens=2, show_progress=False)
    with pytest.raises(ValueError, match="missing.png"):
        caption_images([str(tmp_path / "missing.png")], model, proc, max_new_tokens=2, show_progress=False)
