"""The `evaluate` module `recall_at_k`: loads offline from the package folder and equals the plain function."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_docstring_example_runs():
    # The doctest in _KWARGS_DESCRIPTION (run in a fresh interpreter, offline).
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"}
    script = Path(RECALL_METRIC_PATH) / "recall_at_k.py"
    code = (
        "import doctest, importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('recall_at_k_mod', {str(script)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "t = doctest.DocTestParser().get_doctest(mod._KWARGS_DESCRIPTION, {}, 'kw', None, 0)\n"
        "r = doctest.DocTestRunner(); r.run(t); sys.exit(1 if r.failures or not r.tries else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
