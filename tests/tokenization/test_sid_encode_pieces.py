"""`SIDTokenizerExtension.encode`'s fast pieces path against the exact path (the whole conversation rendered and
tokenised for every SID), on tokenizers of every pipeline kind, with and without a chat template."""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semcore_hf import _testing
from semcore_hf.identifiers.sid_format import join_sid, split_sid
from semcore_hf.tokenization import SIDTokenizerExtension
from semcore_hf.tokenization import extension as ext_module

PROMPT = "Retrieve the identifier of the matching image."


def _metaspace_unigram(with_template: bool):
    """Sentencepiece-like (Unigram, Metaspace with prepend_scheme="first"), BOS added, Llama style."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.Sequence([normalizers.Replace(" ", "▁")])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>")
    tk.train_from_iterator([*_testing.CORPUS, "grass, running, red sofa, umbrella"] * 30, trainer)
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    hf = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if with_template:
        hf.chat_template = (
            "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
            "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
        )
    return hf


def _wordpiece():
    """BERT-like: lower-casing, accent-stripping normalizer, BERT pre-tokenizer, WordPiece with `##`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.train_from_iterator(_testing.CORPUS * 30, trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]"]))
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="[UNK]")


@functools.cache
def _tokenizer(kind: str):
    if kind == "bytelevel_chat":
        tok = _testing.build_tokenizer(None)
    elif kind == "bytelevel_plain":
        tok = _testing.build_tokenizer(None, bos=True)
        tok.chat_template = None
    elif kind == "metaspace_chat":
        tok = _metaspace_unigram(True)
    elif kind == "metaspace_plain":
        tok = _metaspace_unigram(False)
    else:
        tok = _wordpiece()
    SIDTokenizerExtension().apply(tok)
    return tok


KINDS = ["bytelevel_chat", "bytelevel_plain", "metaspace_chat", "metaspace_plain", "wordpiece"]
WORD = st.one_of(
    st.text(alphabet=list("abcdefghij xyzéñß中カ09'-."), min_size=1, max_size=9),
    st.sampled_from(["o'clock", "t-shirt", "grass", "red sofa", "running"]),
).map(lambda w: " ".join(w.split()) or "a")
PHRASES = st.lists(WORD.filter(lambda w: "," not in w and "|" not in w), min_size=0, max_size=4)
GLOBALS = st.lists(st.sampled_from(["dog park", "cat sofa", "中 カ", "beach", "red bus", "o'clock tower"]), min_size=1)


def _exact(ext, tok, sids):
    """The reference: every SID's whole conversation rendered and tokenised, ids after the prompt."""
    template = tok.chat_template
    end_id = ext.token_ids(tok)[2]
    return [ext._encode_exact(tok, template, PROMPT, ext.completion(s), end_id, s) for s in sids]


def _sids(globals_, phrases):
    return list(dict.fromkeys(join_sid(g, p) for g, p in zip(globals_ * len(phrases), phrases)))


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(globals_=GLOBALS, phrases=st.lists(PHRASES, min_size=1, max_size=40), per_text=st.integers(1, 7))
def test_pieces_path_equals_exact_path(kind, globals_, phrases, per_text):
    tok = _tokenizer(kind)
    ext = SIDTokenizerExtension()
    sids = _sids(globals_, phrases)
    assert ext._splits_at_structure_tokens(tok)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ext_module, "_PIECES_PER_TEXT", per_text)  # many texts: SIDs cut at the texts' borders
        pieces = ext._encode_pieces(tok, [ext_module.sid_pieces(s) for s in sids])
        assert pieces == _exact(ext, tok, sids)
        assert ext.encode(sids, tok, prompt=PROMPT) == pieces


@pytest.mark.parametrize("kind", KINDS)
def test_encode_uses_the_pieces_path_in_bulk(kind, monkeypatch):
    tok = _tokenizer(kind)
    ext = SIDTokenizerExtension()
    sids = [join_sid(g, [f"ball {i}", "red frisbee"]) for i in range(300) for g in ("dog park", "cat")]
    spliced = []
    real = ext._encode_spliced
    monkeypatch.setattr(ext, "_encode_spliced", lambda *a, **k: spliced.append(len(a[5])) or real(*a, **k))
    monkeypatch.setattr(ext_module, "_PIECES_PER_TEXT", 37)
    got = ext.encode(sids, tok, prompt=PROMPT)
    assert got == _exact(ext, tok, sids)
    assert spliced and max(spliced) <= ext_module._SPREAD_SAMPLE + 1  # only the spread check rendered whole texts


def test_structure_token_text_inside_a_sid_falls_back(monkeypatch):
    tok = _tokenizer("bytelevel_chat")
    ext = SIDTokenizerExtension()
    sids = [join_sid("dog", [f"ball {i}"]) for i in range(40)] + ["dog | a</sid>b", "x<sid_sep>y | z", "g | <sid>"]
    assert ext._encode_pieces(tok, [ext_module.sid_pieces(s) for s in sids]) is None
    assert ext.encode(sids, tok, prompt=PROMPT) == _exact(ext, tok, sids)


def test_normalized_structure_tokens_use_the_spliced_path():
    from tokenizers import AddedToken

    tok = _testing.build_tokenizer(None)
    ext = SIDTokenizerExtension()
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, normalized=True, special=True) for t in ext.tokens]}
    )
    assert not ext._splits_at_structure_tokens(tok)
    sids = [join_sid("dog park", [f"ball {i}", " red"]) for i in range(30)]
    assert ext.encode(sids, tok, prompt=PROMPT) == _exact(ext, tok, sids)


def test_pieces_path_ignores_and_keeps_the_callers_truncation():
    tok = _testing.build_tokenizer(None)
    ext = SIDTokenizerExtension()
    ext.apply(tok)
    sids = [join_sid("dog park", [f"ball {i}", "red frisbee"]) for i in range(700)]  # > one text of pieces
    reference = _exact(ext, tok, sids)
    tok.backend_tokenizer.enable_truncation(8)
    tok.backend_tokenizer.enable_padding(length=64)
    assert ext._encode_pieces(tok, [ext_module.sid_pieces(s) for s in sids]) == reference
    assert tok.backend_tokenizer.truncation["max_length"] == 8 and tok.backend_tokenizer.padding["length"] == 64


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=list("ab |,\t\n\u00a0\u3000-'中"), max_size=24))
def test_sid_pieces_equal_split_sid(text):
    """The one-regex split of canonical SIDs, and the fallback for every other string `split_sid` accepts."""
    try:
        global_id, phrases = split_sid(text)
    except ValueError:
        with pytest.raises(ValueError):
            ext_module.sid_pieces(text)
        return
    assert ext_module.sid_pieces(text) == (global_id, ", ".join(phrases))
    canonical = join_sid(global_id, phrases)
    assert ext_module._CANONICAL_SID.fullmatch(canonical)  # what join_sid writes takes the one-match path
    assert ext_module.sid_pieces(canonical) == (global_id, ", ".join(phrases))
