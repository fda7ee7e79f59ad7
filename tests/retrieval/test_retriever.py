"""SemCORERetriever: constrained retrieval returns k distinct valid targets, exact scores, collision expansion."""

from __future__ import annotations

import pytest
import torch

from semcore_hf import SemCORERetriever
from semcore_hf.data.prompts import t2i_prompt

QUERIES = ["a dog on the grass", "a cat on a chair", "a boat on the lake", "fruit on a table", "a man on a bike"]


@pytest.fixture(scope="module")
def lm_retriever(sid_lm_dir, small_index):
    return SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu")


def test_returns_k_distinct_targets_with_their_sids(lm_retriever, small_index):
    results = lm_retriever.retrieve(QUERIES, k=5, num_beams=6)
    assert len(results) == len(QUERIES)
    for res in results:
        ids = [r["target_id"] for r in res]
        assert len(ids) == 5 and len(set(ids)) == 5
        for r in res:
            assert r["sid"] == small_index.sid_of(r["target_id"])
        scores = [r["score"] for r in res]
        assert scores == sorted(scores, reverse=True)
        assert all(torch.isfinite(torch.tensor(scores)))


def test_collision_group_is_expanded_with_one_score(lm_retriever, small_index):
    groups = small_index.collision_groups()
    assert groups, "the fixture holds two identical texts"
    sid, members = next(iter(groups.items()))
    res = lm_retriever.retrieve(QUERIES[:2], k=len(small_index), num_beams=small_index.num_sids)
    for per in res:
        got = [r for r in per if r["sid"] == sid]
        assert sorted(r["target_id"] for r in got) == sorted(members)
        assert len({r["score"] for r in got}) == 1


def _brute_force_scores(retriever, query):
    """Teacher-forced log-prob (the retriever's score) of every SID after the prompt (no beam search)."""
    from semcore_hf._testing import exhaustive_sid_scores

    seqs = retriever.extension.encode(retriever.index.sids, retriever.processing_class)
    scores = exhaustive_sid_scores(
        retriever.model, retriever.processing_class, seqs, t2i_prompt(query), score=retriever.score
    )
    return dict(enumerate(scores))


def test_exhaustive_beams_match_brute_force_scores(lm_retriever, small_index):
    # With at least as many beams as SIDs, constrained beam search is exhaustive: every SID comes back with its
    # exact sequence score, so the ranking must equal a brute-force teacher-forced ranking.
    n = small_index.num_sids
    for query in QUERIES[:3]:
        found = lm_retriever.generate_sids([query], num_sids=n, num_beams=n + 2)[0]
        assert found.exact
        ref = _brute_force_scores(lm_retriever, query)
        assert sorted(found.rows) == sorted(ref)
        for row, score in zip(found.rows, found.scores):
            assert score == pytest.approx(ref[row], abs=1e-4)
        assert found.rows == sorted(ref, key=lambda r: -ref[r])


def test_batching_and_left_padding_do_not_change_results(lm_retriever):
    one = [lm_retriever.retrieve([q], k=4, num_beams=4)[0] for q in QUERIES]
    batched = lm_retriever.retrieve(QUERIES, k=4, num_beams=4, batch_size=5)
    for a, b in zip(one, batched):
        assert [r["target_id"] for r in a] == [r["target_id"] for r in b]
        assert [r["score"] for r in a] == pytest.approx([r["score"] for r in b], abs=1e-4)


def test_bad_input_errors(lm_retriever, small_index, images):
    with pytest.raises(ValueError, match="larger than the number of targets"):
        lm_retriever.retrieve(QUERIES[:1], k=len(small_index) + 1)
    with pytest.raises(TypeError, match="list of queries"):
        lm_retriever.retrieve("a dog", k=2)
    with pytest.raises(TypeError, match="all strings"):
        lm_retriever.retrieve(["a dog", images[0]], k=2)
    with pytest.raises(ValueError, match="need a VLM"):
        lm_retriever.retrieve(images[:1], k=2)
    with pytest.raises(ValueError, match="no GSVScorer"):
        lm_retriever.retrieve(QUERIES[:1], k=2, gsv_weight=0.5)
    assert lm_retriever.retrieve([], k=2) == []


def test_trie_from_another_tokenizer_is_refused(sid_lm_dir, small_index, tiny_lm_dir):
    from transformers import AutoTokenizer

    from semcore_hf import SIDTrie

    other = AutoTokenizer.from_pretrained(tiny_lm_dir)  # lacks the SID tokens: another vocabulary
    other.add_special_tokens({"additional_special_tokens": ["<sid>", "</sid>", "<sid_sep>"]})
    trie = SIDTrie.from_sids(small_index.sids, other)
    with pytest.raises(ValueError, match="(?i)tokenizer"):
        SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu", trie=trie)


def test_gsv_reranks_candidates(sid_lm_dir, small_index):
    from semcore_hf.retrieval.retriever import SemCORERetriever as R

    texts = dict(zip(small_index.target_ids, [f"text of {t}" for t in small_index.target_ids]))
    retriever = R.from_pretrained(sid_lm_dir, small_index, device="cpu", gsv=True, candidate_texts=texts)
    plain = retriever.retrieve(QUERIES[:2], k=4, num_beams=4)
    verified = retriever.retrieve(QUERIES[:2], k=4, num_beams=4, gsv_weight=0.5)
    for p, v in zip(plain, verified):
        assert all(r["gsv_score"] is not None for r in v)
        assert [r["score"] for r in v] == sorted((r["score"] for r in v), reverse=True)
        assert {r["target_id"] for r in v} <= {t for t in small_index.target_ids}
        assert all(r["gsv_score"] is None for r in p)
    # weight 0 keeps the generation order; GSV only orders what generation ties (collision members)
    same = retriever.retrieve(QUERIES[:2], k=len(small_index), num_beams=small_index.num_sids, gsv_weight=0.0)
    for per in same:
        keys = [(-r["generation_score"], -r["gsv_score"]) for r in per]
        assert keys == sorted(keys)
    # the fused score is exactly generation + weight * log P(yes)
    for r in verified[0]:
        expected = r["generation_score"] + 0.5 * float(torch.nn.functional.logsigmoid(torch.tensor(r["gsv_score"])))
        assert r["score"] == pytest.approx(expected, abs=1e-6)


def test_vlm_image_queries_i2t_and_text_queries(sid_llava_dir, small_index, images):
    retriever = SemCORERetriever.from_pretrained(sid_llava_dir, small_index, device="cpu")
    i2t = retriever.retrieve(images[:3], k=3, num_beams=3)
    t2i = retriever.retrieve(QUERIES[:2], k=3, num_beams=3)
    for res in i2t + t2i:
        assert len(res) == 3
        assert all(r["sid"] == small_index.sid_of(r["target_id"]) for r in res)
    # batch invariance with images of different sizes
    single = retriever.retrieve(images[1:2], k=3, num_beams=3)[0]
    assert [r["target_id"] for r in single] == [r["target_id"] for r in i2t[1]]


def test_gallery_restricts_candidates(sid_lm_dir, small_index):
    groups = small_index.collision_groups()
    _, members = next(iter(groups.items()))
    gallery = [members[0], "img0", "img4", "img6"]  # one member of the collision group only
    retriever = SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu", gallery=gallery)
    assert retriever.trie.num_sids == 4
    res = retriever.retrieve(QUERIES[:3], k=4, num_beams=6)
    for per in res:
        assert sorted(r["target_id"] for r in per) == sorted(gallery)
    with pytest.raises(ValueError, match="larger than the number of targets"):
        retriever.retrieve(QUERIES[:1], k=5)
    with pytest.raises(ValueError, match="not in the index"):
        SemCORERetriever.from_pretrained(sid_lm_dir, small_index, device="cpu", gallery=["nope"])


def test_add_targets_grows_index_and_trie(sid_lm_dir, small_index, tiny_st):
    import copy

    from semcore_hf import SIDTrie

    index = copy.deepcopy(small_index)
    retriever = SemCORERetriever.from_pretrained(sid_lm_dir, index, device="cpu")
    sids = retriever.add(["new0", "new1"], ["a red bus waits in the rain", "a brown dog runs on the grass"], tiny_st)
    assert [index.sid_of("new0"), index.sid_of("new1")] == sids
    rebuilt = SIDTrie.from_sids(index.sids, retriever.processing_class)
    seqs, rows = retriever.trie.token_sequences()
    ref_seqs, ref_rows = rebuilt.token_sequences()
    assert sorted(zip(map(tuple, seqs), rows.tolist())) == sorted(zip(map(tuple, ref_seqs), ref_rows.tolist()))
    # every target, the new ones included, is reachable: with all SIDs as beams everything comes back
    res = retriever.retrieve(QUERIES[:1], k=len(index), num_beams=index.num_sids)[0]
    assert {"new0", "new1"} <= {r["target_id"] for r in res}


def test_a_model_trained_with_other_task_prompts_is_refused(sid_lm_dir, small_index, tmp_path):
    import shutil

    from semcore_hf.data.prompts import PROMPT_FORMAT
    from semcore_hf.tokenization import SIDTokenizerExtension

    model_dir = tmp_path / "model"
    shutil.copytree(sid_lm_dir, model_dir)
    assert SIDTokenizerExtension.from_pretrained(model_dir).prompt_format == PROMPT_FORMAT  # recorded when prepared
    SIDTokenizerExtension(prompt_format=PROMPT_FORMAT - 1).save_pretrained(model_dir)
    with pytest.raises(ValueError, match="format"):
        SemCORERetriever.from_pretrained(str(model_dir), small_index, device="cpu")
