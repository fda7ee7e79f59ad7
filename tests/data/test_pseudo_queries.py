"""Pseudo-queries (doc2query / DSI-QG style): writing them with an LM, and the `pseudo_t2i` rows they become."""

from __future__ import annotations

import pytest

from semcore_hf.data import build_sid_dataset, generate_pseudo_queries
from semcore_hf.data.pseudo_queries import few_shot_prompt, pseudo_queries_for_source

EXAMPLES = [("animals birds owl", "An owl."), ("food carrot", "A carrot.")]


@pytest.fixture(scope="module")
def lm(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_lm_dir), AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_prompt_shows_the_examples_then_the_target():
    p = few_shot_prompt(EXAMPLES, "vehicles\ntruck")
    assert p.index("Picture: animals birds owl\nQuery: An owl.") < p.index("Picture: food carrot\nQuery: A carrot.")
    assert p.endswith("Picture: vehicles truck\nQuery:")  # line breaks in a text cannot end the prompt early


def test_queries_are_one_line_distinct_and_seeded(lm):
    model, tok = lm
    texts = ["red truck", "green apple", "small dog"]
    out = generate_pseudo_queries(texts, model, tok, EXAMPLES, num_queries=4, max_new_tokens=8, show_progress=False)
    assert len(out) == 3
    for qs, text in zip(out, texts):
        assert 1 <= len(qs) <= 4
        assert all(q and "\n" not in q and q == q.strip() for q in qs)
        assert len({q.lower() for q in qs}) == len(qs) and text not in qs
    again = generate_pseudo_queries(texts, model, tok, EXAMPLES, num_queries=4, max_new_tokens=8, show_progress=False)
    assert again == out
    other = generate_pseudo_queries(
        texts, model, tok, EXAMPLES, num_queries=4, max_new_tokens=8, seed=1, show_progress=False
    )
    assert [q[0] for q in other] == [q[0] for q in out]  # the first query is greedy: the seed only moves the rest


def test_checkpoint_generation_settings_change_nothing(lm):
    import copy

    model, tok = lm
    base = generate_pseudo_queries(["red truck"], model, tok, EXAMPLES, num_queries=1, show_progress=False)
    odd = copy.deepcopy(model)
    odd.generation_config.repetition_penalty = 5.0
    odd.generation_config.do_sample = True
    assert generate_pseudo_queries(["red truck"], odd, tok, EXAMPLES, num_queries=1, show_progress=False) == base


def test_bad_arguments_fail_before_generating(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="examples"):
        generate_pseudo_queries(["x"], model, tok, [])
    with pytest.raises(ValueError, match="num_queries must be a positive integer"):
        generate_pseudo_queries(["x"], model, tok, EXAMPLES, num_queries=0)


def test_pseudo_t2i_rows_map_each_query_to_the_image_sid(source, indexes, lm, tmp_path):
    model, tok = lm
    t2i_index, _ = indexes
    pseudo = pseudo_queries_for_source(source, model, tok, num_queries=2, max_new_tokens=6, show_progress=False)
    assert set(pseudo) == {str(i) for ds in source.values() for i in ds["image_id"]}
    data = build_sid_dataset(
        source, t2i_index=t2i_index, tasks=["pseudo_t2i"], text_only=True, pseudo_queries=pseudo, cache_dir=tmp_path
    )["pseudo_t2i"]
    assert set(data) == set(source)  # every split: the queries come from the images' own texts
    for split, ds in data.items():
        assert len(ds) == sum(len(pseudo[str(i)]) for i in source[split]["image_id"])
        for row in ds:
            assert row["sid"] == t2i_index.sid_of(row["target_id"])
            query = row["prompt"][0]["content"].removeprefix("Find the image: ")
            assert query in pseudo[row["target_id"]]
            assert row["query_id"].startswith(row["target_id"] + "@pseudo")


def test_pseudo_t2i_needs_queries_for_every_image(source, indexes, tmp_path):
    t2i_index, _ = indexes
    with pytest.raises(ValueError, match="needs `pseudo_queries`"):
        build_sid_dataset(source, t2i_index=t2i_index, tasks=["pseudo_t2i"], text_only=True)
    one = str(source["train"]["image_id"][0])
    with pytest.raises(ValueError, match="no entry in pseudo_queries"):
        build_sid_dataset(
            source,
            t2i_index=t2i_index,
            tasks=["pseudo_t2i"],
            text_only=True,
            pseudo_queries={one: ["a query"]},
            cache_dir=tmp_path,
        )


def test_new_pseudo_queries_are_new_rows(source, indexes, tmp_path):
    """The builder's cache key covers the queries: other queries never come back from the cache."""
    t2i_index, _ = indexes
    ids = [str(i) for ds in source.values() for i in ds["image_id"]]
    kw = dict(t2i_index=t2i_index, tasks=["pseudo_t2i"], text_only=True, cache_dir=tmp_path)
    a = build_sid_dataset(source, pseudo_queries={i: ["first"] for i in ids}, **kw)["pseudo_t2i"]
    b = build_sid_dataset(source, pseudo_queries={i: ["second"] for i in ids}, **kw)["pseudo_t2i"]
    assert a["train"][0]["prompt"][0]["content"].endswith("first")
    assert b["train"][0]["prompt"][0]["content"].endswith("second")


def test_bf16_autocast_writes_well_formed_queries(lm):
    model, tok = lm
    out = generate_pseudo_queries(
        ["red truck", "green apple"], model, tok, EXAMPLES, num_queries=2, max_new_tokens=6, autocast="bf16",
        show_progress=False,
    )  # fmt: skip
    assert len(out) == 2 and all(1 <= len(qs) <= 2 and all("\n" not in q for q in qs) for qs in out)


def test_a_new_index_is_new_rows(source, tmp_path, tiny_st, tiny_st_dir):
    """The cache key covers the image index too: SIDs of another index never come back from the cache."""
    from semcore_hf.data import t2i_targets
    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    ids, texts = t2i_targets(source)
    pseudo = {i: ["a query"] for i in ids}
    got = []
    for k in (1, 2):
        cfg = SIDConfig(embedding_model=tiny_st_dir, num_clusters=k, kmeans_n_init=1, lexical_phrases=1)
        index = SIDBuilder(cfg, embedder=tiny_st).build(texts, ids, show_progress=False)
        rows = build_sid_dataset(
            source, t2i_index=index, tasks=["pseudo_t2i"], text_only=True, pseudo_queries=pseudo, cache_dir=tmp_path
        )["pseudo_t2i"]["train"]
        assert [r["sid"] for r in rows] == [index.sid_of(r["target_id"]) for r in rows]
        got.append([r["sid"] for r in rows])
    assert got[0] != got[1]
