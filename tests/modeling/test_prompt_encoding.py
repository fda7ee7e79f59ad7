"""Inference token ids and pixels equal what TRL trained on, for every model kind (BOS-adding tokenizers included)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from semcore_hf import _testing
from semcore_hf.data.prompts import i2t_prompt, t2i_prompt, to_text_only
from semcore_hf.modeling import encode_prompts, open_image
from semcore_hf.tokenization import SIDTokenizerExtension

COMPLETION = [{"role": "assistant", "content": "<sid>dog grass<sid_sep>brown puppy</sid>"}]


@pytest.fixture(scope="module")
def bos_llava(tmp_path_factory):
    from transformers import AutoProcessor

    d = tmp_path_factory.mktemp("bos_llava")
    _testing.build_llava(d, bos=True)
    proc = AutoProcessor.from_pretrained(d)
    SIDTokenizerExtension().apply(proc)
    return proc


def _transparent_image() -> Image.Image:
    """Transparent black around an opaque red square: `.convert("RGB")` turns the margin black, white is right."""
    im = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    im.paste(Image.new("RGBA", (20, 14), (220, 20, 20, 255)), (10, 8))
    return im


def _trl_vlm_prompt(proc, example):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    batch = DataCollatorForVisionLanguageModeling(proc, completion_only_loss=True)([dict(example)])
    keep = (batch["attention_mask"][0] == 1) & (batch["labels"][0] == -100)  # the prompt part
    return batch["input_ids"][0][keep].tolist(), batch


def test_vlm_prompt_ids_equal_trl_collator_with_a_bos_adding_tokenizer(bos_llava):
    proc = bos_llava
    image = _transparent_image()
    trl_ids, trl_batch = _trl_vlm_prompt(proc, {"prompt": i2t_prompt(), "completion": COMPLETION, "images": [image]})
    enc = encode_prompts(proc, [i2t_prompt()], [[open_image(image)]])
    ours = enc["input_ids"][0][enc["attention_mask"][0] == 1].tolist()
    bos = proc.tokenizer.bos_token_id
    assert ours == trl_ids
    assert ours[0] == bos and ours.count(bos) == 1
    # the pixels too: transparency on white, as the processor composites it during training
    assert torch.allclose(enc["pixel_values"], trl_batch["pixel_values"])
    # what the retriever did before: special tokens added on top of a template that renders BOS -> doubled BOS
    text = proc.apply_chat_template(i2t_prompt(), add_generation_prompt=True, tokenize=False)
    old = proc(text=[text], images=[[image.convert("RGB")]], return_tensors="pt")
    assert old["input_ids"][0].tolist()[:2] == [bos, bos]
    assert not torch.allclose(old["pixel_values"], trl_batch["pixel_values"])


def test_vlm_text_prompt_ids_equal_trl_collator(bos_llava):
    proc = bos_llava
    prompt = t2i_prompt("a dog on the grass")
    trl_ids, _ = _trl_vlm_prompt(proc, {"prompt": prompt, "completion": COMPLETION, "images": []})
    enc = encode_prompts(proc, [prompt])
    assert enc["input_ids"][0].tolist() == trl_ids


def test_text_lm_prompt_ids_equal_sft_trainer_with_a_bos_adding_tokenizer(tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    tok = _testing.build_tokenizer(None, bos=True)
    SIDTokenizerExtension().apply(tok)
    model = _testing.build_causal_lm(tok)
    prompts = [to_text_only(t2i_prompt(q)) for q in ("a dog on the grass", "two cats")]
    data = Dataset.from_list([{"prompt": p, "completion": COMPLETION} for p in prompts])
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", max_length=None, bf16=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
    enc = encode_prompts(tok, [t2i_prompt(q) for q in ("a dog on the grass", "two cats")])
    for i, row in enumerate(trainer.train_dataset):
        n = next(j for j, label in enumerate(row["labels"]) if label != -100)  # where the completion starts
        ours = enc["input_ids"][i][enc["attention_mask"][i] == 1].tolist()
        assert ours == row["input_ids"][:n]
        assert ours[0] == tok.bos_token_id and ours.count(tok.bos_token_id) == 1


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_open_image_composites_transparency_on_white(mode, tmp_path):
    from transformers.image_transforms import convert_to_rgb

    im = _transparent_image()
    if mode == "LA":
        im = im.convert("LA")
    elif mode == "P":
        im = im.convert("RGB").quantize(4)
        im.info["transparency"] = im.getpixel((0, 0))
    path = tmp_path / "im.png"
    im.save(path)
    for source in (im, str(path), {"path": str(path), "bytes": None}, {"path": None, "bytes": path.read_bytes()}):
        rgb = open_image(source)
        assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (255, 255, 255)
        ref = convert_to_rgb(Image.open(path), return_numpy=True)
        assert (torch.tensor(list(rgb.getdata())) == torch.from_numpy(ref).reshape(-1, 3)).all()


def test_open_image_names_a_truncated_file(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="photo.jpg"):
        open_image(str(path), "images[3]")
    with pytest.raises(ValueError, match="no such file"):
        open_image(str(tmp_path / "missing.png"))
