"""The `evaluate` module `recall_at_k`: loads offline from the package folder and equals the plain function."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from semcore_hf.evaluation import RECALL_METRIC_PATH, load_recall_metric, recall_at_k

PREDICTIONS = [["c9", "c2", "c1"], ["a", "b", "c", "d"], ["x"], ["z", "y"]]
REFERENCES = [["c1", "c2", "c3", "c4", "c5"], ["d"], ["w"], ["z"]]


@pytest.fixture(scope="module")
def metric():
    os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
    return load_recall_metric()


def test_folder_layout():
    # evaluate finds a local module only when the script is named after its folder.
    folder = Path(RECALL_METRIC_PATH)
    assert (folder / "recall_at_k.py").is_file() and (folder / "README.md").is_file()


def test_load_by_path_and_compute(metric):
    import evaluate

    assert type(metric).__name__ == "RecallAtK"
    by_path = evaluate.load(RECALL_METRIC_PATH)
    expected = recall_at_k(PREDICTIONS, REFERENCES, k=[1, 2, 5])
    assert metric.compute(predictions=PREDICTIONS, references=REFERENCES, k=[1, 2, 5]) == expected
    assert by_path.compute(predictions=PREDICTIONS, references=REFERENCES, k=[1, 2, 5]) == expected


def test_add_batch_accumulates(metric):
    for start in range(0, len(PREDICTIONS), 3):
        metric.add_batch(predictions=PREDICTIONS[start : start + 3], references=REFERENCES[start : start + 3])
    assert metric.compute() == recall_at_k(PREDICTIONS, REFERENCES)
    for p, r in zip(PREDICTIONS, REFERENCES):
        metric.add(predictions=p, references=r)
    assert metric.compute(k=3) == recall_at_k(PREDICTIONS, REFERENCES, k=3)


def test_integer_ids(metric):
    preds, refs = [[3, 1, 2], [5, 6]], [[1], [7, 8]]
    assert metric.compute(predictions=preds, references=refs, k=[1, 2]) == recall_at_k(preds, refs, k=[1, 2])


def test_errors_propagate(metric):
    with pytest.raises(ValueError, match="more than once"):
        metric.compute(predictions=[["a", "a"]], references=[["a"]])


def test_docstring_example_runs(metric):
    # The doctest in _KWARGS_DESCRIPTION, run in-process on the script file itself.
    import doctest
    import importlib.util

    spec = importlib.util.spec_from_file_location("_recall_at_k_script", Path(RECALL_METRIC_PATH) / "recall_at_k.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    test = doctest.DocTestParser().get_doctest(module._KWARGS_DESCRIPTION, {}, "recall_at_k", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.tries >= 1 and runner.failures == 0
