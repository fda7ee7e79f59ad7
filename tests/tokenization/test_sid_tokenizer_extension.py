from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from semcore_hf import _testing
from semcore_hf.identifiers import sid_format
from semcore_hf.tokenization import SIDTokenizerExtension

SIDS = ["animal dog | grass, running", "a cat | red sofa", "park play | two children, ball", "rain | umbrella"]


def _trl_completion_ids(tok, prompt, completion):
    """TRL's prompt-completion tokenisation (SFTTrainer tokenize_fn, conversational) replicated."""
    prompt_msgs = [{"role": "user", "content": prompt}]
    p = tok.apply_chat_template(prompt_msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    pc = tok.apply_chat_template(
        prompt_msgs + [{"role": "assistant", "content": completion}], tokenize=True, return_dict=True
    )["input_ids"]
    assert pc[: len(p)] == p
    return pc[len(p) :]


def _unigram_llama_tokenizer(with_template: bool):
    """A sentencepiece-like (Unigram + Metaspace) tokenizer with BOS, Llama style, trained offline."""
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


def test_apply_idempotent_and_resizes(tiny_lm_dir):
    from transformers import AutoModelForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    n = len(tok)
    ext = SIDTokenizerExtension()
    ids = ext.apply(tok, model)
    assert ids == [n, n + 1, n + 2] and len(tok) == n + 3
    assert model.get_input_embeddings().num_embeddings == n + 3
    assert model.get_output_embeddings().weight.shape[0] == n + 3
    assert ext.apply(tok, model) == ids and len(tok) == n + 3
    assert all(t in tok.all_special_tokens for t in ext.tokens)


def test_encode_matches_trl_and_sft_trainer(tiny_lm_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    ext = SIDTokenizerExtension()
    end_id = ext.apply(tok, model)[2]
    encoded = ext.encode(SIDS * 5, tok)  # > sample size: exercises the batched path
    assert encoded[:4] == encoded[4:8]
    for sid, ids in zip(SIDS, encoded):
        ref = _trl_completion_ids(tok, "find a dog", ext.completion(sid))
        assert ids == ref[: ref.index(end_id) + 1]
        assert ids[-1] == end_id and ext.decode(ids, tok) == sid

    # the real TRL path: SFTTrainer's dataset preparation
    ds = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": f"query {i}"}],
                "completion": [{"role": "assistant", "content": c}],
            }
            for i, c in enumerate(ext.completion(s) for s in SIDS)
        ]
    )
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none", max_length=None,
                     completion_only_loss=True)  # fmt: skip
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    for ex, ids in zip(trainer.train_dataset, encoded):
        completion = [t for t in ex["labels"] if t != -100]  # TRL supervises exactly the completion
        assert completion[: len(ids)] == ids


@pytest.mark.parametrize("with_template", [True, False])
def test_encode_sentencepiece_style_tokenizer(with_template, tmp_path):
    tok = _unigram_llama_tokenizer(with_template)
    ext = SIDTokenizerExtension()
    end_id = ext.apply(tok)[2]
    encoded = ext.encode(SIDS * 5, tok)
    for sid, ids in zip(SIDS, encoded):
        assert ids[-1] == end_id and ids[0] == tok.convert_tokens_to_ids("<sid>")
        assert tok.bos_token_id not in ids
        assert ext.decode(ids, tok) == sid
        if with_template:
            ref = _trl_completion_ids(tok, "find a dog", ext.completion(sid))
        else:  # TRL non-conversational: tok(prompt) vs tok(prompt + completion + eos)
            p = tok("find a dog")["input_ids"]
            pc = tok("find a dog" + ext.completion(sid) + tok.eos_token)["input_ids"]
            ref = pc[len(p) :]
        assert ids == ref[: ref.index(end_id) + 1]
    # round trip with the tokenizer files
    tok.save_pretrained(tmp_path)
    ext.save_pretrained(tmp_path)
    tok2 = AutoTokenizer.from_pretrained(tmp_path)
    ext2 = SIDTokenizerExtension.from_pretrained(tmp_path)
    assert ext2 == ext and ext2.encode(SIDS, tok2) == encoded[:4]
    assert ext.fingerprint(tok2) == ext.fingerprint(tok)


def test_prompt_dependent_tokenisation_is_an_error():
    """Structure tokens that are not special (plain text) merge with the prompt: encode must refuse."""
    tok = _testing.build_tokenizer(None)
    ext = SIDTokenizerExtension(begin="sid:", sep=" ;; ", end="<|im_end|>")
    with pytest.raises(ValueError):
        ext.encode(["dog | grass"], tok)


def test_processor_apply_and_fingerprint(tiny_llava_dir, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(tiny_llava_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_llava_dir)
    ext = SIDTokenizerExtension()
    fp0 = ext.fingerprint(proc)
    ids = ext.apply(proc, model)
    assert ext.fingerprint(proc) != fp0 and ext.fingerprint(proc) == ext.fingerprint(proc.tokenizer)
    assert model.get_input_embeddings().num_embeddings == len(proc.tokenizer)
    encoded = ext.encode(SIDS, proc)
    assert all(e[0] == ids[0] and e[-1] == ids[2] for e in encoded)
    assert [ext.decode(e, proc) for e in encoded] == SIDS
    proc.save_pretrained(tmp_path)
    ext.save_pretrained(tmp_path)
    proc2 = AutoProcessor.from_pretrained(tmp_path)
    assert SIDTokenizerExtension.from_pretrained(tmp_path).encode(SIDS, proc2) == encoded


def test_errors_and_decode_edge_cases(tmp_path):
    tok = _testing.build_tokenizer(None)
    ext = SIDTokenizerExtension()
    with pytest.raises(ValueError, match="apply"):
        ext.encode(SIDS, tok)
    ext.apply(tok)
    with pytest.raises(ValueError, match="Not a SID"):
        ext.encode(["no separator here"], tok)
    with pytest.raises(TypeError):
        ext.encode("a | b", tok)
    with pytest.raises(ValueError):
        SIDTokenizerExtension(begin="<x>", sep="<x>")
    with pytest.raises(FileNotFoundError):
        SIDTokenizerExtension.from_pretrained(tmp_path)
    assert ext.encode([], tok) == []
    ids = ext.encode(SIDS[:1], tok)[0]
    assert ext.decode(ids[:-1], tok) is None  # unfinished
    assert ext.decode(ids + [tok.pad_token_id] * 3, tok) == SIDS[0]  # trailing padding
    assert ext.batch_decode([ids, ids[:2]], tok) == [SIDS[0], None]
    assert sid_format.completion_to_sid(ext.completion(SIDS[1])) == SIDS[1]


def _fresh_tok():
    tok = _testing.build_tokenizer(None)
    SIDTokenizerExtension().apply(tok)
    return tok


def test_fingerprint_follows_every_change_to_sid_tokenisation(tmp_path):
    """Same vocabulary, other tokenisation: the fingerprint (and hence the trie check) must change."""
    from tokenizers import normalizers, pre_tokenizers
    from transformers import AutoTokenizer

    ext = SIDTokenizerExtension()
    base = _fresh_tok()
    fp = ext.fingerprint(base)
    # unchanged by a save/load round trip and by padding/truncation settings a call leaves behind
    base.save_pretrained(tmp_path)
    assert ext.fingerprint(AutoTokenizer.from_pretrained(tmp_path)) == fp
    base(["a dog", "a much longer text about a dog"], padding=True, truncation=True, max_length=4)
    assert ext.fingerprint(base) == fp

    changed = {}
    tok = _fresh_tok()
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    changed["pre-tokenizer"] = tok
    tok = _fresh_tok()
    tok.backend_tokenizer.normalizer = normalizers.Lowercase()
    changed["normalizer"] = tok
    tok = _fresh_tok()
    tok.add_tokens(["dog park"])  # a plain added token: SIDs containing it tokenise differently
    changed["added token"] = tok
    tok = _fresh_tok()
    tok.chat_template = "SYSTEM " + tok.chat_template
    changed["chat template"] = tok
    for what, tok in changed.items():
        if what != "added token":
            assert tok.get_vocab() == base.get_vocab(), what  # the vocabulary alone cannot tell them apart
        assert ext.fingerprint(tok) != fp, what


def test_trie_refuses_a_tokenizer_with_the_same_vocabulary_but_another_pre_tokenizer():
    from tokenizers import pre_tokenizers

    from semcore_hf.decoding import SIDTrie

    tok = _fresh_tok()
    trie = SIDTrie.from_sids(SIDS, tok)
    other = _fresh_tok()
    other.backend_tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trie.check_tokenizer(_fresh_tok())  # an identical rebuild passes
    with pytest.raises(ValueError, match="another tokenizer"):
        trie.check_tokenizer(other)
