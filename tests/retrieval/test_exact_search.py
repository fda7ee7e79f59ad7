"""The constrained search is exact for total log-probability, for every k >= 1 and any beam count.

The reference is exhaustive teacher-forced scoring of every SID (`_testing.exhaustive_sid_scores`), on random tiny
models and random SID sets with fewer beams than SIDs.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semcore_hf import SemCORERetriever, SIDTrie, _testing
from semcore_hf.data.prompts import i2t_prompt, t2i_prompt
from semcore_hf.decoding.search import sid_beam_search
from semcore_hf.modeling import encode_prompts
from semcore_hf.tokenization import SIDTokenizerExtension

WORDS = "dog cat grass sofa red ball park man bike rain boat lake fruit table wooden blue".split()
QUERIES = ["a dog on the grass", "a cat on a sofa", "three boats on a lake"]


@pytest.fixture(scope="module")
def tok_ext():
    tok = _testing.build_tokenizer(None)
    ext = SIDTokenizerExtension()
    ext.apply(tok)
    return tok, ext


def _random_sids(rng: random.Random, n: int) -> list[str]:
    sids: set[str] = set()
    while len(sids) < n:
        glob = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
        lex = ", ".join(" ".join(rng.sample(WORDS, rng.randint(1, 2))) for _ in range(rng.randint(0, 3)))
        sids.add(f"{glob} | {lex}")
    return sorted(sids)


def _setup(tok, ext, seed: int, n_sids: int):
    rng = random.Random(seed)
    sids = _random_sids(rng, n_sids)
    model = _testing.build_causal_lm(tok, hidden_size=32, seed=seed)
    with torch.no_grad():  # a sharper random model: scores spread like a half-trained one
        model.get_input_embeddings().weight.mul_(8.0)
    seqs = ext.encode(sids, tok)
    trie = SIDTrie.build(seqs, model.get_output_embeddings().weight.shape[0])
    return model, sids, seqs, trie


def _reference(model, tok, seqs, prompt, score: str) -> list[float]:
    return _testing.exhaustive_sid_scores(model, tok, seqs, prompt, score=score)


def _assert_same_ranking(rows, scores, ref: list[float], k: int) -> None:
    order = sorted(range(len(ref)), key=lambda r: -ref[r])[:k]
    assert scores == pytest.approx([ref[r] for r in order], abs=1e-4)
    for i, (got, want) in enumerate(zip(rows, order)):
        if got != want:  # only a float near-tie may swap two SIDs
            assert abs(ref[got] - ref[want]) < 1e-4, (i, got, want)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    n_sids=st.integers(6, 30),
    beams=st.integers(1, 5),
    k=st.integers(1, 5),
    score=st.sampled_from(["mean", "total"]),
)
def test_fewer_beams_than_sids_with_widening_equals_exhaustive_scoring(tok_ext, seed, n_sids, beams, k, score):
    tok, ext = tok_ext
    model, sids, seqs, trie = _setup(tok, ext, seed, n_sids)
    prompts = [t2i_prompt(q) for q in QUERIES]
    enc = encode_prompts(tok, prompts)
    width = beams
    while True:  # the retriever's widening rule: double the beams until the list is certified
        out = sid_beam_search(model, enc, trie, width, k, pad_token_id=tok.pad_token_id, score=score)
        if bool(out.exact.all()):
            break
        width *= 2
    for q, prompt in enumerate(prompts):
        ref = _reference(model, tok, seqs, prompt, score)
        _assert_same_ranking(out.sid_rows[q].tolist()[:k], out.scores[q].tolist()[:k], ref, min(k, n_sids))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    n_sids=st.integers(6, 30),
    beams=st.integers(1, 4),
    k=st.integers(1, 4),
    score=st.sampled_from(["mean", "total"]),
)
def test_certificate_is_sound_without_widening(tok_ext, seed, n_sids, beams, k, score):
    # One search with a fixed (small) beam: whenever it claims `exact`, the list must equal exhaustive scoring;
    # when it does not, some pruned prefix really scored above the k-th SID found.
    tok, ext = tok_ext
    model, sids, seqs, trie = _setup(tok, ext, seed, n_sids)
    prompts = [t2i_prompt(q) for q in QUERIES]
    enc = encode_prompts(tok, prompts)
    out = sid_beam_search(model, enc, trie, beams, k, pad_token_id=tok.pad_token_id, score=score)
    for q, prompt in enumerate(prompts):
        found = out.sid_rows[q] >= 0
        ref = _reference(model, tok, seqs, prompt, score)
        # every SID scoring at least the pruned bound holds its exhaustive rank
        certified = int((out.scores[q][found] >= out.pruned_bound[q]).sum())
        rows, scores = out.sid_rows[q][found].tolist(), out.scores[q][found].tolist()
        _assert_same_ranking(rows[:certified], scores[:certified], ref, certified)
        if bool(out.exact[q]):
            _assert_same_ranking(rows, scores, ref, min(k, n_sids))
        else:
            assert float(out.pruned_bound[q]) > float(out.scores[q, -1])


@pytest.mark.parametrize("score", ["mean", "total"])
def test_scores_are_log_probabilities(tok_ext, score):
    tok, ext = tok_ext
    model, sids, seqs, trie = _setup(tok, ext, 3, 12)
    out = sid_beam_search(model, encode_prompts(tok, [t2i_prompt(QUERIES[0])]), trie, 64, 12, score=score)
    assert bool(out.exact[0]) and float(out.pruned_bound[0]) == float("-inf")  # 64 beams: nothing pruned
    ref = _reference(model, tok, seqs, t2i_prompt(QUERIES[0]), score)
    for row, score in zip(out.sid_rows[0].tolist(), out.scores[0].tolist()):
        assert score == pytest.approx(ref[row], abs=1e-4)


# ---------------------------------------------------------------------------------------------- every k, any beams
@pytest.fixture(scope="module")
def lm_retriever(sid_lm_dir, small_index):
    return SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu")


@pytest.mark.parametrize("k, beams", [(1, 1), (1, None), (3, 1), (5, 2), (8, 3)])
def test_every_k_and_beam_count_returns_k_targets(lm_retriever, small_index, k, beams):
    res = lm_retriever.retrieve(QUERIES, k=k, num_beams=beams, max_num_beams=64, certify=k)
    for per in res:
        ids = [r["target_id"] for r in per]
        assert len(ids) == k and len(set(ids)) == k
        assert all(r["exact"] for r in per)
        assert [r["score"] for r in per] == sorted((r["score"] for r in per), reverse=True)


def test_k1_beam1_equals_the_exhaustive_best_sid(lm_retriever, small_index):
    seqs = lm_retriever.extension.encode(small_index.sids, lm_retriever.processing_class)
    for q in QUERIES:
        top = lm_retriever.retrieve([q], k=1, num_beams=1, max_num_beams=64)[0][0]
        ref = _testing.exhaustive_sid_scores(
            lm_retriever.model, lm_retriever.processing_class, seqs, t2i_prompt(q), score=lm_retriever.score
        )
        best = max(range(len(ref)), key=ref.__getitem__)
        assert top["sid"] == small_index.sids[best]
        assert top["score"] == pytest.approx(ref[best], abs=1e-4)


def test_one_sid_gallery_and_one_target(sid_lm_dir, small_index):
    retriever = SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu", gallery=["img0"])
    assert retriever.trie.num_sids == 1
    res = retriever.retrieve(QUERIES, k=1)
    assert [per[0]["target_id"] for per in res] == ["img0"] * len(QUERIES)
    assert all(per[0]["exact"] for per in res)


def test_image_queries_k1_beam1(sid_llava_dir, small_index, images):
    retriever = SemCORERetriever.from_pretrained(sid_llava_dir, small_index, device="cpu")
    res = retriever.retrieve(images[:3], k=1, num_beams=1, max_num_beams=64)
    assert all(len(per) == 1 and per[0]["exact"] for per in res)
    seqs = retriever.extension.encode(small_index.sids, retriever.processing_class)
    ref = _testing.exhaustive_sid_scores(
        retriever.model, retriever.processing_class, seqs, i2t_prompt(), images=[images[0]], score=retriever.score
    )
    best = max(range(len(ref)), key=ref.__getitem__)
    assert res[0][0]["sid"] == small_index.sids[best]
    assert res[0][0]["score"] == pytest.approx(ref[best], abs=1e-4)


def test_checkpoint_generation_config_changes_nothing(sid_lm_dir, small_index):
    clean = SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu")
    tuned = SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu")
    gc = tuned.model.generation_config
    # what instruct checkpoints ship: penalties, n-gram blocking, sampling, a short max length
    gc.repetition_penalty, gc.no_repeat_ngram_size, gc.do_sample = 5.0, 1, True
    gc.temperature, gc.top_k, gc.top_p, gc.max_length, gc.num_beams = 0.3, 2, 0.5, 4, 7
    gc.length_penalty, gc.early_stopping, gc.bad_words_ids = 3.0, True, [[5]]
    a = clean.retrieve(QUERIES, k=5, num_beams=3)
    b = tuned.retrieve(QUERIES, k=5, num_beams=3)
    for x, y in zip(a, b):
        assert [r["target_id"] for r in x] == [r["target_id"] for r in y]
        assert [r["score"] for r in x] == pytest.approx([r["score"] for r in y], abs=1e-6)


def test_bad_arguments_fail_before_any_search(lm_retriever, small_index, images):
    for kwargs, match in [
        ({"k": 0}, "positive int"),
        ({"k": 2, "num_beams": 0}, "num_beams"),
        ({"k": 2, "batch_size": 0}, "batch_size"),
        ({"k": 2, "max_num_beams": 0}, "max_num_beams"),
    ]:
        with pytest.raises(ValueError, match=match):
            lm_retriever.retrieve(QUERIES[:1], **kwargs)
    with pytest.raises(ValueError, match="empty"):
        lm_retriever.retrieve(["a dog", "  "], k=2)
    with pytest.raises(ValueError, match="direction"):
        lm_retriever.retrieve(QUERIES[:1], k=2, direction="i2t")


def test_negative_gsv_weight_is_refused(sid_lm_dir, small_index):
    texts = {t: f"text of {t}" for t in small_index.target_ids}
    r = SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu", gsv=True, candidate_texts=texts)
    for weight in (-0.1, float("nan"), True):
        with pytest.raises(ValueError, match="gsv_weight"):
            r.retrieve(QUERIES[:1], k=2, gsv_weight=weight)


def test_text_queries_against_an_image_to_text_index_are_refused(sid_lm_dir, small_index):
    import copy

    index = copy.deepcopy(small_index)
    index.target_modality = "text"  # an I2T index: its targets are captions
    retriever = SemCORERetriever.from_pretrained(sid_lm_dir, index, device="cpu")
    with pytest.raises(ValueError, match="index holds text targets"):
        retriever.retrieve(QUERIES[:1], k=2)


def test_bf16_autocast_search_is_exact_for_its_own_scores(sid_lm_dir, small_index):
    """Under autocast the search certifies the scores the model computes so, close to the fp32 ones."""
    fp32 = SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu")
    bf16 = SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu", autocast="bf16")
    seqs = bf16.extension.encode(small_index.sids, bf16.processing_class)
    for q in QUERIES:
        got = bf16.retrieve([q], k=3, max_num_beams=64, certify=3)[0]
        want = fp32.retrieve([q], k=3, max_num_beams=64, certify=3)[0]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=0.05)
        from semcore_hf.modeling import autocast_inference

        with autocast_inference(bf16.model, "bf16"):
            ref = _testing.exhaustive_sid_scores(bf16.model, bf16.processing_class, seqs, t2i_prompt(q), score="mean")
        best = max(ref)
        assert got[0]["score"] == pytest.approx(best, abs=0.02)  # other shapes, other bf16 rounding: close, not equal
