"""`prepare_model_for_sids` and `detect_model_kind` on the tiny causal LM and the tiny LLaVA."""

from __future__ import annotations

import json
import os

import pytest

from semcore_hf.modeling import detect_model_kind
from semcore_hf.tokenization import SIDTokenizerExtension
from semcore_hf.training import prepare_model_for_sids

CASES = {"causal_lm": "tiny_lm_dir", "image_text_to_text": "tiny_llava_dir"}


def _load(path, kind):
    from semcore_hf.modeling import load_model_and_processor

    model, proc, got = load_model_and_processor(path, kind)
    assert got == kind
    return model, getattr(proc, "tokenizer", proc)


@pytest.fixture(scope="module", params=list(CASES))
def prepared(request, tmp_path_factory):
    kind = request.param
    base = request.getfixturevalue(CASES[kind])
    out = tmp_path_factory.mktemp(f"prep_{kind}") / "model"
    ids = prepare_model_for_sids(base, out, model_kind=kind)
    return kind, base, out, ids


def test_detect_model_kind(tiny_lm_dir, tiny_llava_dir):
    assert detect_model_kind(tiny_lm_dir) == "causal_lm"
    assert detect_model_kind(tiny_llava_dir) == "image_text_to_text"


def test_structure_tokens_are_special_and_embeddings_grew(prepared):
    kind, base, out, ids = prepared
    ext = SIDTokenizerExtension()
    base_model, base_tok = _load(base, kind)
    model, tok = _load(str(out), kind)
    assert all(t not in base_tok.get_vocab() for t in ext.tokens)
    assert tok.convert_tokens_to_ids(list(ext.tokens)) == ids
    assert len(set(ids)) == 3 and all(i >= len(base_tok) for i in ids)
    assert set(ext.tokens) <= set(tok.all_special_tokens)
    # special tokens are never split: each one encodes to exactly its id
    for t, i in zip(ext.tokens, ids):
        assert tok(t, add_special_tokens=False)["input_ids"] == [i]
    n_base = base_model.get_input_embeddings().num_embeddings
    n_new = model.get_input_embeddings().num_embeddings
    assert n_new == len(tok) == len(base_tok) + 3 and n_new > n_base
    assert model.get_output_embeddings().weight.shape[0] == n_new


def test_extension_json_is_written(prepared):
    _, _, out, _ = prepared
    data = json.loads((out / "sid_tokenizer_extension.json").read_text())
    assert (data["begin"], data["sep"], data["end"]) == ("<sid>", "<sid_sep>", "</sid>")
    assert SIDTokenizerExtension.from_pretrained(out) == SIDTokenizerExtension()


def test_prepare_is_deterministic_and_idempotent(prepared, tmp_path):
    kind, base, out, ids = prepared
    again = prepare_model_for_sids(base, tmp_path / "again", model_kind=kind)
    assert again == ids
    # preparing an already SID-ready model adds nothing and does not grow the embeddings again
    twice = prepare_model_for_sids(str(out), tmp_path / "twice", model_kind="auto")
    assert twice == ids
    model, tok = _load(str(tmp_path / "twice"), kind)
    assert model.get_input_embeddings().num_embeddings == len(tok) == max(ids) + 1


def test_unknown_model_kind_is_rejected(tiny_lm_dir, tmp_path):
    with pytest.raises(ValueError, match="model_kind"):
        prepare_model_for_sids(tiny_lm_dir, tmp_path / "x", model_kind="seq2seq")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing"])
def test_output_is_written_atomically(tiny_lm_dir, tmp_path, monkeypatch, existing):
    dst = tmp_path / "model"
    if existing:
        dst.mkdir()
        (dst / "keep.txt").write_text("old")

    def boom(self, save_directory):
        raise OSError("disk full")

    monkeypatch.setattr(SIDTokenizerExtension, "save_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        prepare_model_for_sids(tiny_lm_dir, dst, model_kind="causal_lm")
    if existing:
        assert sorted(os.listdir(dst)) == ["keep.txt"] and (dst / "keep.txt").read_text() == "old"
    else:
        assert not dst.exists()
    assert sorted(os.listdir(tmp_path)) == (["model"] if existing else [])  # no temporary folder left behind


def test_compact_chat_template_for_causal_lms_model_template_for_vlms(prepared, tmp_path):
    from semcore_hf.data.prompts import t2i_prompt
    from semcore_hf.modeling import encode_prompts
    from semcore_hf.modeling.inputs import COMPACT_CHAT_TEMPLATE
    from semcore_hf.training.prepare import preparation

    kind, base, out, _ = prepared
    model, tok = _load(str(out), kind)
    info = preparation(out)
    assert info["base_model"] == base and info["prompt_format"] >= 2
    if kind == "causal_lm":
        assert info["chat_template"] == "compact" and tok.chat_template == COMPACT_CHAT_TEMPLATE
        ids = encode_prompts(tok, [t2i_prompt("a dog")])["input_ids"][0].tolist()
        assert tok.decode(ids) == "Find the image: a dog\n"
        kept = prepare_model_for_sids(base, tmp_path / "kept", model_kind=kind, chat_template="model")
        assert kept and _load(str(tmp_path / "kept"), kind)[1].chat_template == _load(base, kind)[1].chat_template
    else:
        assert info["chat_template"] == "model"
        with pytest.raises(ValueError, match="image placeholders"):
            prepare_model_for_sids(base, tmp_path / "x", model_kind=kind, chat_template="compact")
