"""recall_at_k: hand-computed cases, the vectorised path, a property test against a naive reference, input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semcore_hf.evaluation import recall_at_k


def _naive(predictions, references, ks):
    """Textbook definitions, written independently of the library."""
    out = {}
    for k in sorted(set(ks)):
        out[f"recall@{k}"] = sum(any(t in r for t in p[:k]) for p, r in zip(predictions, references)) / len(references)
    rr, rr_cut = [], []
    for p, r in zip(predictions, references):
        rank = next((i + 1 for i, t in enumerate(p) if t in r), None)
        rr.append(1 / rank if rank else 0.0)
        rr_cut.append(1 / rank if rank and rank <= max(ks) else 0.0)
    out["mrr"] = sum(rr) / len(rr)
    out[f"mrr@{max(ks)}"] = sum(rr_cut) / len(rr_cut)
    out["num_queries"] = len(references)
    return out


def test_docstring_example():
    import doctest

    from semcore_hf.evaluation import metrics

    result = doctest.testmod(metrics, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 1 and result.failed == 0


def test_hand_computed_multiple_relevant():
    # I2T-like: query 0 has 3 relevant captions, first hit at rank 2; query 1 first hit at rank 4;
    # query 2 no hit at all; query 3 hit at rank 1.
    predictions = [["c9", "c2", "c1", "c3"], ["a", "b", "c", "d", "e"], ["x", "y"], ["z"]]
    references = [["c1", "c2", "c3"], ["d", "q"], ["w"], ["z", "zz"]]
    out = recall_at_k(predictions, references, k=(1, 2, 5))
    assert out == pytest.approx(
        {
            "recall@1": 1 / 4,
            "recall@2": 2 / 4,
            "recall@5": 3 / 4,
            "mrr": (1 / 2 + 1 / 4 + 0 + 1) / 4,
            "mrr@5": (1 / 2 + 1 / 4 + 0 + 1) / 4,
            "num_queries": 4,
        }
    )
    assert list(out) == ["recall@1", "recall@2", "recall@5", "mrr", "mrr@5", "num_queries"]
    assert isinstance(out["num_queries"], int)


def test_hit_counts_once_and_mrr_cut():
    # Two relevant ids in the top 2 still count as one hit; the hit at rank 3 counts for mrr but not mrr@2.
    out = recall_at_k([[1, 2, 3], [7, 8, 9]], [[1, 2], [9]], k=[2, 1])
    assert out["recall@1"] == 0.5 and out["recall@2"] == 0.5
    assert out["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert out["mrr@2"] == pytest.approx(0.5)


def test_default_k_short_and_empty_lists():
    out = recall_at_k([["a"], []], [["a"], ["b"]])
    assert out == {"recall@1": 0.5, "recall@5": 0.5, "recall@10": 0.5, "mrr": 0.5, "mrr@10": 0.5, "num_queries": 2}


def test_single_int_k_tuples_and_duplicate_references():
    out = recall_at_k((("a", "b"),), [("b", "b")], k=2)
    assert out == {"recall@2": 1.0, "mrr": 0.5, "mrr@2": 0.5, "num_queries": 1}


def test_vectorised_path_numpy_and_torch():
    pred = np.array([[5, 1, 2, -1], [3, 4, 0, 9], [8, -1, -1, -1]])
    ref = np.array([[2, 1], [9, -1], [7, -1]])
    lists_pred = [[t for t in row if t >= 0] for row in pred.tolist()]
    lists_ref = [[t for t in row if t >= 0] for row in ref.tolist()]
    expected = recall_at_k(lists_pred, lists_ref, k=[1, 2, 4])
    assert recall_at_k(pred, ref, k=[1, 2, 4]) == expected
    assert recall_at_k(torch.from_numpy(pred), torch.from_numpy(ref), k=[1, 2, 4]) == expected
    assert expected["recall@2"] == pytest.approx(1 / 3) and expected["recall@4"] == pytest.approx(2 / 3)


@st.composite
def _retrieval_case(draw):
    n = draw(st.integers(1, 12))
    universe = st.integers(0, 15)
    preds = [draw(st.lists(universe, max_size=10, unique=True)) for _ in range(n)]
    refs = [draw(st.lists(universe, min_size=1, max_size=5)) for _ in range(n)]
    ks = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))
    return preds, refs, ks


def _pad(rows, width):
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


@settings(max_examples=200, deadline=None)
@given(_retrieval_case())
def test_property_matches_naive_reference_and_vectorised(case):
    preds, refs, ks = case
    expected = _naive(preds, refs, ks)
    got = recall_at_k(preds, refs, k=ks)
    assert got == pytest.approx(expected)
    # Same ids as strings: the plain path is type-agnostic.
    assert recall_at_k([[str(t) for t in p] for p in preds], [[str(t) for t in r] for r in refs], k=ks) == got
    # Vectorised path on padded matrices (extra padding columns must not matter).
    width = max(len(p) for p in preds) + 2
    assert recall_at_k(_pad(preds, width), _pad(refs, 6), k=ks) == got


@pytest.mark.parametrize(
    ("predictions", "references", "k", "error", "match"),
    [
        ([["a"]], [["a"], ["b"]], 1, ValueError, "1 queries but `references` has 2"),
        ([], [], 1, ValueError, "no query"),
        ([["a"], ["b"]], [["a"], []], 1, ValueError, "Query 1 has no relevant"),
        ([["a", "b", "a"]], [["a"]], 1, ValueError, "lists target 'a' more than once"),
        ([["a"]], [["a"]], 0, ValueError, "K must be >= 1"),
        ([["a"]], [["a"]], [1, -3], ValueError, "K must be >= 1"),
        ([["a"]], [["a"]], [], TypeError, "non-empty"),
        ([["a"]], [["a"]], 1.5, TypeError, "positive int"),
        ([["a"]], [["a"]], [True], TypeError, "must be an int"),
        ("ab", [["a"], ["b"]], 1, TypeError, "`predictions` must be a list"),
        ({"q": ["a"]}, [["a"]], 1, TypeError, "`predictions` must be a list"),
        ([["a"]], ["a"], 1, TypeError, r"`references\[0\]` must be a list"),
        ([["a"], "b"], [["a"], ["b"]], 1, TypeError, r"`predictions\[1\]` must be a list"),
        ([["a"]], None, 1, TypeError, "`references` must be a list"),
    ],
)
def test_input_errors(predictions, references, k, error, match):
    with pytest.raises(error, match=match):
        recall_at_k(predictions, references, k=k)


@pytest.mark.parametrize(
    ("pred", "ref", "error", "match"),
    [
        (np.array([[1, 2]]), np.array([[1], [2]]), ValueError, "1 queries but `references` has 2"),
        (np.array([[1, 2]]), np.array([[-1, -1]]), ValueError, "Query 0 has no relevant"),
        (np.array([[1, 4, 4]]), np.array([[1]]), ValueError, "lists target 4 more than once"),
        (np.array([[1, -1, 3]]), np.array([[1]]), ValueError, "after padding"),
        (np.array([1, 2]), np.array([[1]]), TypeError, "2-D integer matrix"),
        (np.array([[1.0, 2.0]]), np.array([[1]]), TypeError, "2-D integer matrix"),
    ],
)
def test_vectorised_input_errors(pred, ref, error, match):
    with pytest.raises(error, match=match):
        recall_at_k(pred, ref, k=1)


# ---------------------------------------------------------------------------------------------- ties
def _brute_force_expected(blocks, relevant, ks):
    """Average of recall@K / 1/rank over every order of every tie block (exhaustive; small blocks only)."""
    import itertools

    from semcore_hf.evaluation import recall_at_k

    orders = list(itertools.product(*[list(itertools.permutations(b)) for b in blocks]))
    rec = {kk: 0.0 for kk in ks}
    mrr = 0.0
    for order in orders:
        ranked = [t for block in order for t in block]
        m = recall_at_k([ranked], [relevant], k=ks)
        for kk in ks:
            rec[kk] += m[f"recall@{kk}"]
        mrr += m["mrr"]
    return {kk: v / len(orders) for kk, v in rec.items()}, mrr / len(orders)


@settings(max_examples=80, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    rel=st.sets(st.integers(0, 15), min_size=1, max_size=3),
    ks=st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True),
)
def test_tie_aware_recall_equals_the_average_over_all_tie_orders(sizes, rel, ks):
    from semcore_hf.evaluation import recall_at_k, tie_aware_recall_at_k

    blocks, start = [], 0
    for m in sizes:
        blocks.append(list(range(start, start + m)))
        start += m
    got = tie_aware_recall_at_k([blocks], [sorted(rel)], k=ks)
    want, want_mrr = _brute_force_expected(blocks, sorted(rel), sorted(ks))
    for kk in ks:
        assert got[f"expected_recall@{kk}"] == pytest.approx(want[kk])
        ranked = [t for b in blocks for t in b]
        best = recall_at_k([sorted(ranked, key=lambda t: (blocks_index(blocks, t), t not in rel))], [sorted(rel)], kk)
        assert got[f"optimistic_recall@{kk}"] == best[f"recall@{kk}"] >= got[f"expected_recall@{kk}"] - 1e-12
    assert got["expected_mrr"] == pytest.approx(want_mrr)
    assert got["tied_at_1"] == float(sizes[0] > 1)


def blocks_index(blocks, t):
    return next(i for i, b in enumerate(blocks) if t in b)


def test_tie_aware_recall_without_ties_is_plain_recall():
    from semcore_hf.evaluation import recall_at_k, tie_aware_recall_at_k

    ranked = [["a", "b", "c"], ["x", "y", "z"]]
    refs = [["b"], ["q"]]
    got = tie_aware_recall_at_k([[[t] for t in r] for r in ranked], refs, k=[1, 2, 3])
    plain = recall_at_k(ranked, refs, k=[1, 2, 3])
    for kk in (1, 2, 3):
        assert got[f"expected_recall@{kk}"] == got[f"optimistic_recall@{kk}"] == plain[f"recall@{kk}"]
    assert got["expected_mrr"] == pytest.approx(plain["mrr"])
