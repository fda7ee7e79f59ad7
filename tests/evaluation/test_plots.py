"""plot_recall_curves writes a PNG, atomically, and rejects results without recall@K."""

from __future__ import annotations

import pytest

from semcore_hf.evaluation import plot_recall_curves, recall_at_k

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_writes_png(tmp_path):
    t2i = recall_at_k([["a", "b"], ["c"]], [["b"], ["c"]], k=[1, 5, 10])
    results = {"SemCORE T2I": t2i, "CLIP I2T": {"recall@1": 0.85, "recall@5": 0.97, "recall@10": 0.99, "mrr": 0.9}}
    out = plot_recall_curves(results, tmp_path / "sub" / "recall.png", title="test")
    assert out == tmp_path / "sub" / "recall.png"
    assert out.read_bytes().startswith(PNG_MAGIC) and out.stat().st_size > 1000
    # Overwrite in place; no temporary file is left behind.
    plot_recall_curves({"x": {"recall@1": 0.1}}, out, percent=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["recall.png"]


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        plot_recall_curves({}, tmp_path / "a.png")
    with pytest.raises(ValueError, match="no 'recall@K'"):
        plot_recall_curves({"sys": {"mrr": 0.5}}, tmp_path / "a.png")
    assert not list(tmp_path.iterdir())
