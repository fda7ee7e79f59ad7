"""`SIDRetrievalEvaluator`: called like a sentence-transformers evaluator (prefixed metrics), and as a TrainerCallback
that logs Recall@K at the end of every epoch of `semcore-hf train --recall_eval_source`."""

from __future__ import annotations

import json

import pytest
from train_helpers import rows_recipe, run_recording, train_argv

from semcore_hf.identifiers import SIDIndex


@pytest.fixture(scope="module")
def index(text_sids):
    return SIDIndex.from_pretrained(str(text_sids / "t2i_index"))


def test_call_returns_prefixed_metrics_and_restores_train_mode(sid_lm_dir, index, karpathy_corpus, tmp_path):
    from semcore_hf.evaluation import SIDRetrievalEvaluator, evaluate_retriever
    from semcore_hf.modeling import load_model_and_processor
    from semcore_hf.retrieval import SemCORERetriever

    src, _ = karpathy_corpus
    evaluator = SIDRetrievalEvaluator.from_source(src, index, split="test", k=(1, 2))
    assert evaluator.name == "t2i_test" and evaluator.primary_metric == "t2i_test_recall@1"
    model, tok, _ = load_model_and_processor(sid_lm_dir)
    model.train()
    metrics = evaluator(model, tok, output_path=tmp_path, epoch=1.0, steps=3)
    assert model.training  # evaluation switched to eval mode and back
    assert {"t2i_test_recall@1", "t2i_test_recall@2", "t2i_test_mrr"} <= set(metrics)
    assert all(key.startswith("t2i_test_") for key in metrics)
    assert metrics["t2i_test_recall@2"] == 1.0  # the test gallery has 2 images
    expected = evaluate_retriever(
        SemCORERetriever(model, tok, index, gallery=evaluator.query_set.gallery), evaluator.query_set, k=(1, 2)
    )["metrics"]
    assert metrics["t2i_test_recall@1"] == expected["recall@1"] and metrics["t2i_test_mrr"] == expected["mrr"]
    line = json.loads((tmp_path / "t2i_test_results.jsonl").read_text())
    assert line["epoch"] == 1.0 and line["steps"] == 3 and line["t2i_test_recall@1"] == metrics["t2i_test_recall@1"]
    assert evaluator(SemCORERetriever(model, tok, index, gallery=evaluator.query_set.gallery)) == metrics


def test_train_logs_recall_at_k_every_epoch(tiny_lm_dir, text_sids, karpathy_corpus, tmp_path):
    src, _ = karpathy_corpus
    argv = train_argv(tiny_lm_dir, tmp_path / "model", text_sids / "dataset", recipe=rows_recipe(tmp_path))
    argv += ["--num_train_epochs", "2", "--per_device_train_batch_size", "10", "--lora_r", "4", "--lora_alpha", "8"]
    argv += ["--lora_target_modules", "q_proj", "v_proj", "--sid_index", str(text_sids / "t2i_index")]
    argv += ["--recall_eval_source", str(src), "--recall_eval_k", "1", "2", "--logging_steps", "1"]
    rc, trainer = run_recording(argv)
    assert rc == 0
    logged = [e for e in trainer.state.log_history if "eval_t2i_validation_recall@1" in e]
    assert [e["epoch"] for e in logged] == [1.0, 2.0]  # once per epoch, next to the training loss
    assert all(0.0 <= e["eval_t2i_validation_recall@1"] <= e["eval_t2i_validation_recall@2"] == 1.0 for e in logged)
    assert any("loss" in e for e in trainer.state.log_history)


def test_recall_eval_needs_the_index(tiny_lm_dir, text_sids, karpathy_corpus, tmp_path):
    from semcore_hf.cli.main import main

    src, _ = karpathy_corpus
    argv = train_argv(
        tiny_lm_dir, tmp_path / "model", text_sids / "dataset", "--max_steps", "1", "--use_peft", "false"
    )
    with pytest.raises(ValueError, match="--recall_eval_source needs --sid_index"):
        main([*argv, "--recall_eval_source", str(src), "--debug"])
    assert not (tmp_path / "model").exists()  # refused before anything was prepared or trained
