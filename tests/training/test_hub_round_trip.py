"""Every artefact round-trips through the (mocked, local) Hub by id: index, trie, dataset, a full model, a LoRA adapter
with a portable base, `semcore-hf train --push_to_hub`, and `semcore-hf evaluate`'s model-index; cards included.

`semcore_hf._testing.local_hub` writes pushes to a folder and mirrors them into a Hub cache, so every
`from_pretrained("user/name")` below resolves by id exactly as after a real download.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from huggingface_hub import DatasetCard, ModelCard
from train_helpers import rows_recipe, train_argv

from semcore_hf._testing import local_hub
from semcore_hf.cli.main import main
from semcore_hf.identifiers import SIDIndex

QUERIES = ["a dog on the grass", "boats on a lake", "a cat on a red sofa"]


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory):
    return tmp_path_factory.mktemp("hub")


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")


def _ranking(retriever):
    return [[(r["target_id"], round(r["score"], 4)) for r in res] for res in retriever.retrieve(QUERIES, k=3)]


def _pushed_files(hub_root, repo_id, repo_type="model"):
    folder = hub_root / f"{repo_type}s" / repo_id
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def tiny_base_on_hub(hub_root, tiny_lm_dir):
    """The tiny base model (no SID tokens) pushed as `user/tiny-base`, as a real base model is on the Hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with pytest.MonkeyPatch.context() as mp, local_hub(hub_root):
        mp.setenv("HF_TOKEN", "hf_dummy")
        AutoModelForCausalLM.from_pretrained(tiny_lm_dir).push_to_hub("user/tiny-base")
        AutoTokenizer.from_pretrained(tiny_lm_dir).push_to_hub("user/tiny-base")
    return "user/tiny-base"


def test_index_trie_and_dataset_round_trip_by_id(hub_root, text_sids, sid_lm_dir):
    from transformers import AutoTokenizer

    from semcore_hf.data import load_sid_dataset, push_sid_dataset_to_hub
    from semcore_hf.decoding import SIDTrie

    index = SIDIndex.from_pretrained(str(text_sids / "t2i_index"))
    tok = AutoTokenizer.from_pretrained(sid_lm_dir)
    trie = SIDTrie.from_sids(index.sids, tok)
    local_rows = load_sid_dataset(text_sids / "dataset", "t2i")
    with local_hub(hub_root):
        index.push_to_hub("user/t2i-index")
        trie.push_to_hub("user/t2i-trie")
        push_sid_dataset_to_hub(text_sids / "dataset", "user/t2i-data")
        got_index = SIDIndex.from_pretrained("user/t2i-index")
        got_trie = SIDTrie.from_pretrained("user/t2i-trie", tok)  # the tokenizer check passes: same token ids
        got_rows = load_sid_dataset("user/t2i-data", "t2i")
        data_card = DatasetCard.load("user/t2i-data", repo_type="dataset")
        index_card = ModelCard.load("user/t2i-index")
    assert (got_index.sids, got_index.target_ids) == (index.sids, index.target_ids)
    np.testing.assert_array_equal(got_index.target_sid, index.target_sid)
    np.testing.assert_array_equal(got_index.centroids, index.centroids)
    assert got_trie.token_sequences()[0] == trie.token_sequences()[0] and got_trie.num_sids == trie.num_sids
    assert {s: d.to_list() for s, d in got_rows.items()} == {s: d.to_list() for s, d in local_rows.items()}
    assert [c["config_name"] for c in data_card.data.configs] == ["t2i", "memorize_t2i", "verify_t2i"]
    assert "semcore" in data_card.data.tags
    assert index_card.data.library_name == "semcore_hf"
    assert index_card.data.sid_config == index.config.to_dict()


def test_full_model_round_trip_by_id(hub_root, full_run, text_sids):
    from semcore_hf.retrieval import SemCORERetriever
    from semcore_hf.tokenization import SIDTokenizerExtension

    out, _ = full_run
    local = SemCORERetriever.from_pretrained(str(out), str(text_sids / "t2i_index"), device="cpu")
    argv = ["push-to-hub", "--model_dir", str(out), "--repo_id", "user/semcore-full"]
    with local_hub(hub_root) as commits:
        assert main([*argv, "--index", str(text_sids / "t2i_index")]) == 0
        hub = SemCORERetriever.from_pretrained("user/semcore-full", device="cpu")  # model + its sid_index/
        card = ModelCard.load("user/semcore-full")
    # the tokenizer travelled with the SID tokens, at the ids the model was trained on
    assert SIDTokenizerExtension().token_ids(hub.tokenizer) == SIDTokenizerExtension().token_ids(local.tokenizer)
    assert [c[0] for c in commits] == ["user/semcore-full"]  # one commit: model, tokenizer, index and card
    files = _pushed_files(hub_root, "user/semcore-full")
    assert {"model.safetensors", "config.json", "tokenizer.json", "sid_tokenizer_extension.json", "README.md"} <= files
    assert {"sid_index/sid_index.json", "sid_index/sid_index.safetensors", "sid_index/sid_index_config.json"} <= files
    assert not [f for f in files if f.startswith(("sid_ready_base/", "checkpoint-", ".")) or f.endswith(".bin")]
    assert hub.index.sids == local.index.sids
    assert _ranking(hub) == _ranking(local)
    assert card.data.library_name == "transformers" and "semcore" in card.data.tags
    assert card.data.sid_config["num_clusters"] == local.index.config.num_clusters
    assert "transformers" in card.data.framework_versions


def test_lora_adapter_round_trip_records_a_portable_base(hub_root, lora_run, tiny_base_on_hub, text_sids):
    from semcore_hf.hub import push_trained_model
    from semcore_hf.retrieval import SemCORERetriever

    out, _ = lora_run
    local = SemCORERetriever.from_pretrained(str(out), device="cpu")
    with local_hub(hub_root):
        # trained from a local base: no Hub id can stand for it unless one is given
        with pytest.raises(ValueError, match="Cannot record the adapter's base portably"):
            push_trained_model(out, "user/semcore-lora")
        push_trained_model(out, "user/semcore-lora", base_model=tiny_base_on_hub)
        hub = SemCORERetriever.from_pretrained("user/semcore-lora", device="cpu")
        card = ModelCard.load("user/semcore-lora")
    repo = hub_root / "models" / "user" / "semcore-lora"
    config = json.loads((repo / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == tiny_base_on_hub
    assert str(out) not in (repo / "adapter_config.json").read_text()  # the training machine's path is gone
    # the local adapter folder itself is unchanged (the pushed copy was staged)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] != tiny_base_on_hub
    # applied to the original base (grown to the tokenizer), the adapter's SID-token rows make it the same model
    assert _ranking(hub) == _ranking(local)
    assert card.data.base_model == tiny_base_on_hub and card.data.library_name == "peft"


def test_train_push_to_hub_pushes_once_with_the_semcore_card(hub_root, tiny_base_on_hub, text_sids, tmp_path):
    from semcore_hf.retrieval import SemCORERetriever

    out = tmp_path / "model"
    argv = train_argv(tiny_base_on_hub, out, text_sids / "dataset", "--max_steps", "2", recipe=rows_recipe(tmp_path))
    argv += ["--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]
    argv += ["--sid_index", str(text_sids / "t2i_index"), "--push_to_hub", "true", "--hub_model_id", "user/trained"]
    with local_hub(hub_root) as commits:
        assert main(argv) == 0
        hub = SemCORERetriever.from_pretrained("user/trained", device="cpu")
    assert [c[0] for c in commits] == ["user/trained"]  # no checkpoint pushes, no trainer push with TRL's card
    repo = hub_root / "models" / "user" / "trained"
    card = ModelCard.load(repo / "README.md")
    assert card.data.to_dict()["semcore"]["base_model"] == tiny_base_on_hub and "semcore" in card.data.tags
    assert card.data.base_model == tiny_base_on_hub  # a Hub id: recorded in the card data
    assert "trained using [TRL]" not in card.text and "This model is a fine-tuned version of" not in card.text
    # trained on a local SID-ready copy of a Hub base, storing the new rows: the Hub base is recorded
    assert json.loads((repo / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_base_on_hub
    assert len(hub.retrieve(QUERIES[:1], k=2)[0]) == 2


def test_evaluate_writes_recall_into_the_model_index(hub_root, full_run, text_sids, karpathy_corpus, tmp_path):
    src, _ = karpathy_corpus
    model = tmp_path / "model"
    shutil.copytree(full_run[0], model)  # the session's run stays as it is
    argv = ["evaluate", "--model", str(model), "--index", str(text_sids / "t2i_index"), "--source", str(src)]
    argv += ["-k", "1", "2", "--device", "cpu", "--output_dir", str(tmp_path / "eval"), "--no_plot"]
    for _ in range(2):  # evaluating again replaces the results of the same metric, dataset and split
        assert main(argv) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    card = ModelCard.load(model / "README.md")
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"recall@1", "recall@2", "mrr"} and len(card.data.eval_results) == 3
    assert results["recall@1"].metric_value == pytest.approx(metrics["recall@1"])
    assert results["recall@1"].task_type == "text-to-image-retrieval" and results["recall@1"].dataset_split == "test"
    assert "model-index" in (model / "README.md").read_text()
    assert "sid_config" in card.data.to_dict() and "framework_versions" in card.data.to_dict()  # training's facts kept
    assert "| Recall@1 |" in card.text  # the body's results table

    # a Hub model: its card by id, updated and committed back; a later push keeps the results
    from semcore_hf.hub import push_trained_model

    with local_hub(hub_root):
        push_trained_model(model, "user/evaluated", index=text_sids / "t2i_index")
        hub_argv = ["evaluate", "--model", "user/evaluated", "--source", str(src), "-k", "1", "2", "--device", "cpu"]
        hub_argv += ["--output_dir", str(tmp_path / "eval_hub"), "--no_plot", "--push_model_card"]
        assert main(hub_argv) == 0
    pushed = ModelCard.load(hub_root / "models" / "user" / "evaluated" / "README.md")
    assert {r.metric_type for r in pushed.data.eval_results} == {"recall@1", "recall@2", "mrr"}
    assert len(pushed.data.eval_results) == 3 and "sid_config" in pushed.data.to_dict()


def test_prepare_model_pushes_a_sid_ready_processor(hub_root, tiny_llava_dir, tmp_path):
    """A SID-ready VLM by id: its processor carries the SID tokens, and `semcore-hf train` would train it as is."""
    from semcore_hf.data.prompts import PROMPT_FORMAT
    from semcore_hf.modeling import load_model_and_processor
    from semcore_hf.tokenization import SIDTokenizerExtension
    from semcore_hf.training.sft import _is_sid_ready

    out = tmp_path / "sid_ready"
    argv = ["prepare-model", "--model_name_or_path", tiny_llava_dir, "--output_dir", str(out)]
    with local_hub(hub_root) as commits:
        assert main([*argv, "--push_to_hub", "--hub_model_id", "user/llava-sid-ready"]) == 0
        model, processor, kind = load_model_and_processor("user/llava-sid-ready")
        extension = SIDTokenizerExtension(prompt_format=PROMPT_FORMAT)
        assert _is_sid_ready("user/llava-sid-ready", extension, "model")
        assert not _is_sid_ready("user/tiny-base-that-is-not-there", extension, "model")
        card = ModelCard.load("user/llava-sid-ready")
    assert [c[0] for c in commits] == ["user/llava-sid-ready"] and kind == "image_text_to_text"
    _, local, _ = load_model_and_processor(str(out), processor_only=True, model_kind="image_text_to_text")
    assert extension.token_ids(processor) == extension.token_ids(local)
    assert model.get_input_embeddings().num_embeddings >= len(processor.tokenizer)
    assert "sid-ready" in card.data.tags and card.data.sid_config["prompt_format"] == PROMPT_FORMAT
