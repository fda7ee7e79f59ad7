"""One end-to-end build on the real all-MiniLM-L6-v2 (slow: loads real weights)."""

import re

import pytest

from semcore_hf.identifiers import SIDBuilder, SIDConfig
from semcore_hf.identifiers.sid_format import split_sid

DOGS = [
    "a brown dog runs through the tall grass",
    "a black dog jumps to catch a frisbee",
    "a small puppy chews on a stick in the yard",
    "two dogs play tug of war with a rope",
    "a golden retriever swims in a lake",
    "a white dog sleeps on the porch",
    "a dog carries a ball on the beach",
    "a spotted dog runs across a snowy field",
]
BIKES = [
    "a man rides a bicycle down a city street",
    "a cyclist races along a mountain trail",
    "a woman on a red bike waits at a traffic light",
    "a boy does a trick on his bmx bike",
    "a group of cyclists ride on a country road",
    "a girl rides her bicycle past a row of shops",
    "a mountain biker jumps off a rock",
    "a man repairs the wheel of his bike",
]
FOOD = [
    "a plate of spaghetti with tomato sauce",
    "a chef slices vegetables in a kitchen",
    "a bowl of fresh fruit on a table",
    "a woman bakes bread in an oven",
    "a pizza with cheese and mushrooms",
    "a family shares dinner at a restaurant",
    "a cup of coffee next to a croissant",
    "a man grills burgers on a barbecue",
]
MUSIC = [
    "a man plays the guitar on stage",
    "a woman sings into a microphone at a concert",
    "a drummer performs with a rock band",
    "a girl practices the violin at home",
    "a jazz band plays in a small club",
    "an old man plays the piano in a hall",
    "a crowd cheers at an outdoor music festival",
    "a boy plays the trumpet in a marching band",
]
CLOCKS = [
    "a clock tower shows three o'clock",
    "a clock tower shows four o'clock",
    "a large clock on a building at twelve o'clock",
    "an old clock face showing nine o'clock",
    "a wall clock above a doorway",
    "a station clock reading seven o'clock",
    "a clock on a brick tower at night",
    "a round clock hangs on a wall",
]
CAPTIONS = DOGS + BIKES + FOOD + MUSIC + CLOCKS


@pytest.mark.slow
def test_minilm_sids_are_sensible(minilm_path):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(minilm_path, device="cpu")
    idx = SIDBuilder(SIDConfig(embedding_model=minilm_path, num_clusters=5, seed=0), embedder=st).build(
        CAPTIONS, show_progress=False
    )
    # dog, bike, music and clock captions mostly share one cluster each, hence one global ID (food is too varied)
    for start in (0, 8, 24, 32):
        clusters = [int(c) for c in idx.target_cluster[start : start + 8]]
        assert max(clusters.count(c) for c in set(clusters)) >= 6, (start, clusters, idx.global_ids)
    dog_cluster = max(set(idx.target_cluster[:8].tolist()), key=idx.target_cluster[:8].tolist().count)
    assert {"dog", "dogs", "puppy"} & set(idx.cluster_words[dog_cluster][:3]), idx.cluster_words[dog_cluster]
    # the lexical phrases come from each caption, and number words tell clocks apart
    for i, t in enumerate(idx.target_ids):
        g, phrases = split_sid(idx.sid_of(t))
        words = set(re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", CAPTIONS[i].lower()))
        assert phrases and {w for p in phrases for w in p.split()} <= words
        assert not set(g.split()) & {w for p in phrases for w in p.split()}
    assert idx.sid_of("32") != idx.sid_of("33")
    assert idx.collision_report()["num_groups"] == 0
