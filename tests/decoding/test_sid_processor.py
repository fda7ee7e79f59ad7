from __future__ import annotations

import random

import pytest
import torch
from _sid_decoding_ref import SIDS, dict_trie, reference_fn
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LogitsProcessorList, PrefixConstrainedLogitsProcessor

from semcore_hf.decoding import SIDConstrainedLogitsProcessor, SIDTrie

END, PAD, V, P = 29, 28, 30, 3

seq_sets = st.lists(st.lists(st.integers(0, 5), min_size=0, max_size=6), min_size=1, max_size=30, unique_by=tuple).map(
    lambda xs: [x + [END] for x in xs]
)


def _reference(seqs, input_ids, scores):
    fn = reference_fn(dict_trie(seqs), P, END)
    return PrefixConstrainedLogitsProcessor(fn, num_beams=1)(input_ids, scores.clone())


@settings(max_examples=60, deadline=None)
@given(seqs=seq_sets, data=st.data())
def test_single_call_matches_prefix_constrained_reference(seqs, data):
    """Stateless path (a fresh processor mid-sequence re-walks): random prefixes, on and off the trie."""
    trie = SIDTrie.build(seqs, V)
    length = data.draw(st.integers(0, 8))
    rows = []
    for _ in range(data.draw(st.integers(1, 6))):
        base = data.draw(st.sampled_from(seqs))[:length]
        tail = data.draw(st.lists(st.integers(0, V - 1), min_size=length - len(base), max_size=length - len(base)))
        row = base + tail
        if row and data.draw(st.booleans()):
            row[data.draw(st.integers(0, length - 1))] = data.draw(st.integers(0, V - 1))
        rows.append([PAD] * P + row)
    ids = torch.tensor(rows, dtype=torch.long)
    scores = torch.randn(len(rows), V)
    ref = _reference(seqs, ids, scores)
    for kw in ({}, {"stateless": True}, {"inplace": True}):
        out = SIDConstrainedLogitsProcessor(trie, P, **kw)(ids, scores.clone())
        assert torch.equal(out, ref)


@settings(max_examples=40, deadline=None)
@given(seqs=seq_sets, seed=st.integers(0, 2**16))
def test_carried_state_matches_reference_under_beam_reordering(seqs, seed):
    """Consecutive calls as in beam search: each new row extends a random previous row (any token, even invalid)."""
    rng = random.Random(seed)
    trie = SIDTrie.build(seqs, V)
    proc = SIDConstrainedLogitsProcessor(trie, P)
    rows = [[PAD] * P for _ in range(rng.randint(1, 8))]
    for _ in range(9):
        ids = torch.tensor(rows, dtype=torch.long)
        scores = torch.randn(len(rows), V)
        out = proc(ids, scores.clone())
        assert torch.equal(out, _reference(seqs, ids, scores))
        new = []
        for _ in range(len(rows)):
            parent = rng.randrange(len(rows))
            finite = torch.isfinite(out[parent]).nonzero().flatten().tolist()
            tok = rng.choice(finite) if rng.random() < 0.85 else rng.randrange(V)
            new.append(rows[parent] + [tok])
        rows = new


@settings(max_examples=40, deadline=None)
@given(seqs=seq_sets, seed=st.integers(0, 2**16))
def test_rows_that_extend_no_previous_row_get_their_own_allowed_set(seqs, seed):
    """A reused processor / custom loop: some rows of a call have no parent among the previous call's rows.

    Such a row must get the allowed set of its own prefix (often a valid SID prefix), never only the end token.
    """
    rng = random.Random(seed)
    trie = SIDTrie.build(seqs, V)
    proc = SIDConstrainedLogitsProcessor(trie, P)
    rows = [[PAD] * P for _ in range(rng.randint(1, 6))]
    for step in range(8):
        ids = torch.tensor(rows, dtype=torch.long)
        scores = torch.randn(len(rows), V)
        out = proc(ids, scores.clone())
        assert torch.equal(out, _reference(seqs, ids, scores)), step
        new = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.5:  # a foreign row: a valid SID prefix (or noise) no previous row leads to
                src = rng.choice(seqs) + [END] * 10
                prefix = src[: step + 1] if rng.random() < 0.8 else [rng.randrange(V) for _ in range(step + 1)]
                new.append([PAD] * P + prefix)
            else:
                parent = rng.randrange(len(rows))
                finite = torch.isfinite(out[parent]).nonzero().flatten().tolist()
                new.append(rows[parent] + [rng.choice(finite)])
        rows = new


def test_processor_errors():
    trie = SIDTrie.build([[1, END], [2, END]], V)
    with pytest.raises(ValueError, match="prompt_length"):
        SIDConstrainedLogitsProcessor(trie, -1)
    with pytest.raises(ValueError, match="outside"):
        SIDConstrainedLogitsProcessor(trie, 2, stop_token_id=V)
    with pytest.raises(TypeError):
        SIDConstrainedLogitsProcessor({}, 2)
    with pytest.raises(ValueError, match="stop_token_id"):
        SIDConstrainedLogitsProcessor(SIDTrie.build([[1, END], [2, 3]], V), 2)
    proc = SIDConstrainedLogitsProcessor(trie, 5)
    with pytest.raises(ValueError, match="prompt_length"):
        proc(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, V))


def _generate(model, enc, proc_list, **kw):
    return model.generate(
        **enc,
        logits_processor=LogitsProcessorList(proc_list),
        output_scores=True,
        return_dict_in_generate=True,
        do_sample=False,
        **kw,
    )


@pytest.mark.parametrize("num_beams", [1, 3, 8, 16])
def test_generate_identical_to_reference(sid_lm, num_beams):
    """Greedy and beam search: same sequences and scores as PrefixConstrainedLogitsProcessor + dict trie."""
    model, tok, ext, sids, seqs = sid_lm
    trie = SIDTrie.from_sids(sids, tok, ext)
    end_id = trie.end_token_id
    prompts = ["a dog", "a man rides a bicycle down a busy street in the rain"]
    msgs = [[{"role": "user", "content": p}] for p in prompts]
    texts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs]
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    plen = enc["input_ids"].shape[1]
    kw = dict(max_new_tokens=trie.max_depth + 2, eos_token_id=end_id, pad_token_id=tok.pad_token_id)
    if num_beams > 1:
        kw.update(num_beams=num_beams, num_return_sequences=num_beams, early_stopping=True)
    ours = _generate(model, enc, [SIDConstrainedLogitsProcessor(trie, plen)], **kw)
    fn = reference_fn(dict_trie(seqs), plen, end_id)
    ref = _generate(model, enc, [PrefixConstrainedLogitsProcessor(fn, num_beams=num_beams)], **kw)
    assert torch.equal(ours.sequences, ref.sequences)
    if num_beams > 1:
        assert torch.equal(ours.sequences_scores, ref.sequences_scores)
    for a, b in zip(ours.scores, ref.scores):
        assert torch.equal(a, b)

    gen = ours.sequences[:, plen:]
    valid = torch.ones(gen.shape[0], dtype=torch.bool)
    if num_beams > 1:
        valid = torch.isfinite(ours.sequences_scores) & (ours.sequences_scores > -1e8)
    assert valid.sum() >= min(num_beams, len(sids))  # per prompt at least that many, here across the batch
    rows = trie.lookup_rows(gen)
    for g, ok, row in zip(gen, valid.tolist(), rows.tolist()):
        if ok:
            assert ext.decode(g, tok) in sids
            assert row >= 0 and sids[row] == ext.decode(g, tok)
    if num_beams > len(sids):  # GENRE #51: more beams than SIDs -> the surplus is -inf scored and must be dropped
        assert (~valid).any()
        per_prompt = valid.view(len(prompts), num_beams).sum(1)
        assert (per_prompt <= len(sids)).all()


def test_inplace_processor_in_beam_search(sid_lm):
    model, tok, ext, sids, _ = sid_lm
    trie = SIDTrie.from_sids(sids, tok, ext)
    enc = tok(["a cat"], return_tensors="pt")
    plen = enc["input_ids"].shape[1]
    kw = dict(max_new_tokens=trie.max_depth, eos_token_id=trie.end_token_id, pad_token_id=tok.pad_token_id,
              num_beams=4, num_return_sequences=4)  # fmt: skip
    a = _generate(model, enc, [SIDConstrainedLogitsProcessor(trie, plen, inplace=True)], **kw)
    b = _generate(model, enc, [SIDConstrainedLogitsProcessor(trie, plen, stateless=True)], **kw)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.sequences_scores, b.sequences_scores)
    assert all(ext.decode(s[plen:], tok) in sids for s in a.sequences)


def test_llava_image_prompt_gives_valid_sids(tiny_llava_dir):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from semcore_hf.tokenization import SIDTokenizerExtension

    proc = AutoProcessor.from_pretrained(tiny_llava_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_llava_dir).eval()
    ext = SIDTokenizerExtension()
    ext.apply(proc, model)
    assert model.get_input_embeddings().num_embeddings == len(proc.tokenizer)
    trie = SIDTrie.from_sids(SIDS, proc, ext)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "retrieve the image id."}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    images = [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (40, 40), (10, 200, 30))]
    inputs = proc(text=[text, "short " + text], images=images, return_tensors="pt", padding=True,
                  padding_side="left")  # fmt: skip
    plen = inputs["input_ids"].shape[1]
    out = model.generate(
        **inputs,
        logits_processor=LogitsProcessorList([SIDConstrainedLogitsProcessor(trie, plen)]),
        max_new_tokens=trie.max_depth,
        num_beams=4,
        num_return_sequences=4,
        eos_token_id=trie.end_token_id,
        pad_token_id=proc.tokenizer.pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    keep = torch.isfinite(out.sequences_scores) & (out.sequences_scores > -1e8)
    assert keep.all()
    assert all(ext.decode(s[plen:], proc) in SIDS for s in out.sequences)
