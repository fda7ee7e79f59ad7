"""Words of SIDs: Unicode normalisation, words of every script, negation words kept, texts without words refused."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from semcore_hf.identifiers import ctfidf
from semcore_hf.identifiers.sid_format import split_sid
from semcore_hf.identifiers.text import (
    POLARITY_WORDS,
    SEMCORE_STOP_WORDS,
    make_vectorizer,
    normalize_text,
    resolve_stop_words,
    words_of,
)

FILLER = ["a dog runs on the green grass", "a cat sleeps on a red sofa", "a man rides a bike down the street"]


class _Embedder:
    """The tiny sentence-transformer behind a text rewrite, so that two spellings embed identically."""

    def __init__(self, st_model, rewrite=lambda t: t):
        self.st, self.rewrite = st_model, rewrite

    def encode(self, texts, **kwargs):
        return self.st.encode([self.rewrite(t) for t in texts], **kwargs)

    def get_sentence_embedding_dimension(self):
        return self.st.get_sentence_embedding_dimension()


class _NeverEmbed:
    def encode(self, texts, **kwargs):
        raise AssertionError("the texts were embedded before the input was checked")


def _sids(index, n):
    return [index.sid_of(str(i)) for i in range(n)]


def _sid_words(sid):
    g, phrases = split_sid(sid)
    return g.split(), [w for p in phrases for w in p.split()]


# -- normalisation and words ---------------------------------------------------------------------------------------


def test_typographic_punctuation_becomes_ascii():
    assert normalize_text("A Woman’s Café — at three o’clock") == "a woman's cafe -- at three o'clock"
    assert normalize_text("‘single’ “double” „low‟ «guillemets» 10–20 x−1") == (
        '\'single\' "double" "low" "guillemets" 10-20 x-1'
    )
    assert normalize_text("ＦＵＬＬ ﬁne x² wo\u00adman\u200b") == "full fine x2 woman"  # NFKC, invisible characters


@pytest.mark.parametrize(
    "typographic, ascii_",
    [("woman’s", "woman's"), ("o’clock", "o'clock"), ("don‘t", "don't"), ("rock ʼn roll", "rock 'n roll")],
)
def test_typographic_apostrophes_keep_one_word(typographic, ascii_):
    assert words_of(typographic) == words_of(ascii_)
    analyze = make_vectorizer(frozenset()).build_analyzer()  # what c-TF-IDF and KeyBERT see
    assert analyze(typographic) == analyze(ascii_)
    assert len(words_of("woman’s")) == 1 and words_of("three o’clock") == ["three", "o'clock"]


def test_words_of_every_script():
    analyze = make_vectorizer(frozenset()).build_analyzer()
    assert analyze("हिन्दी भाषा, 東京") == ["हिन्दी", "भाषा", "東", "京"]
    assert words_of("हिन्दी भाषा") == ["हिन्दी", "भाषा"]  # Devanagari vowel signs and virama stay in the word
    assert words_of("घास पर दौड़ता कुत्ता") == ["घास", "पर", "दौड़ता", "कुत्ता"]
    assert words_of("كلب يجري على العشب") == ["كلب", "يجري", "على", "العشب"]
    assert words_of("Ёлка и йогурт") == ["ёлка", "и", "йогурт"]  # the breve of й is part of the letter
    assert words_of("Straße, CAFÉ, naïve") == ["strasse", "cafe", "naive"]  # Latin diacritics are removed
    assert words_of("한국어 문장") == ["한국어", "문장"]
    assert words_of("می‌خواهم") == ["می\u200cخواهم"]  # ZWNJ is part of the Persian word
    # Chinese and Japanese: one word per ideograph and per hiragana, one per katakana run
    assert words_of("一只狗在草地上跑") == ["一", "只", "狗", "在", "草", "地", "上", "跑"]
    assert words_of("コーヒーを飲む") == ["コーヒー", "を", "飲", "む"]
    assert words_of("🐶🐶 !!! ★") == [] and words_of("snake_case|a,b") == ["snake", "case", "a", "b"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_no_word_holds_a_sid_separator(text):
    for word in words_of(text):
        assert word and not any(c.isspace() or c in "|,<>" for c in word), word


def test_negation_and_polarity_words_are_not_stop_words():
    analyze = make_vectorizer(SEMCORE_STOP_WORDS).build_analyzer()
    assert analyze("no parking") == ["no", "parking"]
    assert analyze("not available") == ["not", "available"]
    assert analyze("cup without handle") == ["cup", "without", "handle"]
    assert analyze("lamp on") == ["lamp", "on"] and analyze("never done") == ["never", "done"]
    assert POLARITY_WORDS.isdisjoint(SEMCORE_STOP_WORDS)
    assert analyze("the dog and the cat") == ["dog", "cat"]  # ordinary stop words still go


def test_a_text_of_stop_words_keeps_its_own_words():
    analyze = make_vectorizer(SEMCORE_STOP_WORDS, (1, 2)).build_analyzer()
    assert analyze("it is what it is") == ["it", "is", "what", "it", "is", "it is", "is what", "what it", "it is"]
    assert analyze("a dog is here") == ["dog"]  # stop words are only kept when nothing else is left
    assert resolve_stop_words(["Don’t", "THE"]) == frozenset({"don't", "the"})  # user lists are normalised too


def test_fallback_stop_words_and_polarity_words_do_not_name_clusters():
    vocab = np.array(["is", "it", "lamp", "no", "sofa"], dtype=object)
    weights = sp.csr_matrix(np.array([[9.0, 8.0, 1.0, 7.0, 2.0], [3.0, 0.0, 0.0, 0.0, 0.0]]))
    # "is"/"it" only come from texts made of stop words: they follow the content words; "no" never names a cluster
    assert ctfidf.top_words(weights, vocab, 5) == [["sofa", "lamp", "is", "it"], ["is"]]


# -- through SIDBuilder ----------------------------------------------------------------------------------------------


def test_typographic_apostrophes_give_the_ascii_sids(make_builder, tiny_st):
    ascii_ = ["a woman's red bag", "a clock tower shows three o'clock", "a clock tower shows four o'clock", *FILLER]
    curly = [t.replace("'", "’") for t in ascii_]
    embedder = _Embedder(tiny_st, rewrite=lambda t: t.replace("’", "'"))  # identical embeddings for both
    a = _sids(make_builder(embedder=embedder, num_clusters=2).build(ascii_, show_progress=False), len(ascii_))
    c = _sids(make_builder(embedder=embedder, num_clusters=2).build(curly, show_progress=False), len(curly))
    assert c == a  # the README's "three o'clock" example holds for both apostrophes
    assert c[1] != c[2] and "three" in c[1] and "four" in c[2]
    words = {w for s in c for part in _sid_words(s) for w in part}
    assert {"woman's", "o'clock"} & words and not {"o", "s"} & words


@pytest.mark.parametrize("resolve", [False, True])
def test_negation_pairs_get_different_sids(make_builder, resolve):
    pairs = [
        ("no parking", "parking"),
        ("not available", "available"),
        ("cup without handle", "cup handle"),
        ("lamp on", "lamp"),
        ("never opened", "opened"),
    ]
    texts = [t for pair in pairs for t in pair] + FILLER
    index = make_builder(num_clusters=2, resolve_collisions=resolve).build(texts, show_progress=False)
    sids = _sids(index, len(texts))
    for k, (a, b) in enumerate(pairs):
        assert sids[2 * k] != sids[2 * k + 1], (a, b, sids[2 * k])
    assert not {w for g in index.global_ids for w in g.split()} & POLARITY_WORDS  # they never name a cluster
    # the plain English list drops them, and the pairs collide
    eng = _sids(make_builder(num_clusters=2, stop_words="english").build(texts, show_progress=False), len(texts))
    assert eng[0] == eng[1] and eng[2] == eng[3]


MULTILINGUAL = [
    "一只狗在草地上跑",
    "一只猫坐在沙发上",
    "两个孩子在公园里玩球",
    "コーヒーを飲む女性",
    "公園で遊ぶ子供たち",
    "كلب يجري على العشب",
    "قطة تجلس على الأريكة",
    "رجل يركب دراجة في الشارع",
    "घास पर दौड़ता कुत्ता",
    "सोफे पर बैठी बिल्ली",
    "साइकिल चलाता आदमी",
    "собака бежит по траве",
    "кошка спит на диване",
    "강아지가 잔디 위를 달린다",
]


def test_captions_of_every_script_get_sids_of_their_words(make_builder, tiny_st_dir):
    from semcore_hf._testing import build_tokenizer
    from semcore_hf.tokenization import SIDTokenizerExtension

    index = make_builder(num_clusters=3, resolve_collisions=True).build(MULTILINGUAL, show_progress=False)
    assert not any(g.startswith("cluster") for g in index.global_ids), index.global_ids
    assert index.collision_report()["num_groups"] == 0
    cluster_words = [set() for _ in index.global_ids]
    for i, text in enumerate(MULTILINGUAL):
        cluster_words[index.target_cluster[i]].update(words_of(text))
    for i, text in enumerate(MULTILINGUAL):
        global_words, lexical_words = _sid_words(index.sid_of(str(i)))
        assert set(lexical_words) <= set(words_of(text)), (text, index.sid_of(str(i)))
        assert set(global_words) <= cluster_words[index.target_cluster[i]]
        assert global_words and (lexical_words or set(global_words) <= set(words_of(text)))
    # The tiny byte-level BPE tokenizer (as the tests' models use) round-trips every such SID.
    tok = build_tokenizer(None)
    ext = SIDTokenizerExtension()
    ext.apply(tok)
    ids = ext.encode(index.sids, tok)
    assert [ext.decode(x, tok) for x in ids] == index.sids


def test_texts_of_stop_words_only_keep_their_words(make_builder):
    texts = ["it is what it is", "there it is", *FILLER]
    sids = _sids(make_builder(num_clusters=2).build(texts, show_progress=False), len(texts))
    assert sids[0] != sids[1]
    for sid, text in zip(sids[:2], texts[:2]):
        g, lex = _sid_words(sid)
        assert g and not any(w.isdigit() for w in g) and set(lex) <= set(words_of(text)), sid


@pytest.mark.parametrize("as_dataset", [False, True])
def test_texts_without_any_word_are_refused_before_embedding(make_builder, as_dataset):
    texts = ["a dog on the grass", "🐶🐶", "a cat on a sofa", "!!! ???", "★"]
    ids = [f"t{i}" for i in range(len(texts))]
    builder = make_builder(embedder=_NeverEmbed(), num_clusters=2)
    if as_dataset:
        ds = datasets.Dataset.from_dict({"text": texts, "id": ids})
        call = lambda: builder.build(ds, id_column="id", show_progress=False)  # noqa: E731
    else:
        call = lambda: builder.build(texts, ids, show_progress=False)  # noqa: E731
    with pytest.raises(ValueError, match=r"3 text\(s\) have no word") as e:
        call()
    message = str(e.value)
    assert "'t1'" in message and "'t3'" in message and "'t4'" in message and "'t0'" not in message
    assert "caption_images" in message  # the fix
