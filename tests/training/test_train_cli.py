"""`semcore-hf train` end to end on the tiny LM: LoRA (+ trainable structure-token rows) and full fine-tuning."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import N_TRAIN_ROWS, train_argv

from semcore_hf.cli.main import main
from semcore_hf.tokenization import SIDTokenizerExtension


def _structure_ids(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path)).convert_tokens_to_ids(list(SIDTokenizerExtension().tokens))


def _base_embedding(out):
    base = load_file(out / "sid_ready_base" / "model.safetensors")
    return next(v for k, v in base.items() if k.endswith("embed_tokens.weight"))


def test_lora_run_trains_on_every_row_for_the_requested_steps(lora_run):
    _, trainer = lora_run
    assert trainer.state.global_step == 3
    assert len(trainer.train_dataset) == N_TRAIN_ROWS  # memorize_t2i contributed train+validation+test
    assert trainer.eval_dataset is None  # eval_strategy "no"


def test_lora_adapter_holds_learned_structure_token_rows(lora_run):
    out, _ = lora_run
    ids = _structure_ids(out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["lora_alpha"] == 8
    assert set(cfg["target_modules"]) == {"q_proj", "v_proj"}
    assert cfg["trainable_token_indices"] == ids
    weights = load_file(out / "adapter_model.safetensors")
    deltas = [v for k, v in weights.items() if k.endswith("trainable_tokens_delta")]
    assert len(deltas) >= 1
    base_rows = _base_embedding(out)[ids]
    for delta in deltas:
        # peft's "delta" holds the replacement rows, initialised as a copy of the base rows: a learned row is one
        # that is non-zero and differs from the SID-ready base's row
        assert delta.shape == base_rows.shape
        assert (delta.abs().sum(dim=1) > 0).all()
        assert ((delta - base_rows).abs().amax(dim=1) > 0).all(), "a structure-token row was not trained"
    assert any("lora_A" in k for k in weights) and any("lora_B" in k for k in weights)


def test_training_output_is_self_contained_for_retrieval(lora_run):
    out, _ = lora_run
    assert SIDTokenizerExtension.from_pretrained(out) == SIDTokenizerExtension()
    assert (out / "sid_ready_base" / "config.json").is_file() and (out / "sid_index" / "sid_index.json").is_file()
    assert (out / "tokenizer_config.json").is_file()


def test_retriever_merges_the_lora_adapter_and_retrieves(lora_run, text_sids):
    from semcore_hf.identifiers import SIDIndex
    from semcore_hf.retrieval import SemCORERetriever

    out, _ = lora_run
    index_dir = text_sids / "t2i_index"
    retriever = SemCORERetriever.from_pretrained(str(out), str(index_dir), device="cpu")
    assert not hasattr(retriever.model, "peft_config")  # merged into a plain transformers model
    # the merged embedding holds the learned rows of the structure tokens and the base rows elsewhere
    ids = _structure_ids(out)
    base_emb = _base_embedding(out)
    delta = next(
        v
        for k, v in load_file(out / "adapter_model.safetensors").items()
        if "embed_tokens" in k and k.endswith("trainable_tokens_delta")
    )
    merged = retriever.model.get_input_embeddings().weight.detach()
    torch.testing.assert_close(merged[ids], delta)
    others = torch.ones(len(merged), dtype=torch.bool)
    others[ids] = False
    torch.testing.assert_close(merged[others], base_emb[others])
    index = SIDIndex.from_pretrained(str(index_dir))
    results = retriever.retrieve(["a dog on the grass", "boats on a lake"], k=3)
    assert len(results) == 2
    for res in results:
        assert len(res) == 3
        targets = [r["target_id"] for r in res]
        assert len(set(targets)) == 3 and set(targets) <= set(index.target_ids)
        for r in res:
            assert r["sid"] == index.sid_of(r["target_id"])
        scores = [r["score"] for r in res]
        assert scores == sorted(scores, reverse=True)


def test_full_fine_tune_writes_a_plain_model(full_run, text_sids):
    from semcore_hf.retrieval import SemCORERetriever

    out, trainer = full_run
    assert trainer.state.global_step == 1
    assert not (out / "adapter_config.json").exists()
    assert (out / "model.safetensors").is_file() and (out / "sid_tokenizer_extension.json").is_file()
    ids = _structure_ids(out)
    trained = load_file(out / "model.safetensors")
    base = load_file(out / "sid_ready_base" / "model.safetensors")
    key = next(k for k in trained if k.endswith("embed_tokens.weight"))
    assert not torch.equal(trained[key][ids], base[key][ids])  # full fine-tuning updated the new rows too
    res = SemCORERetriever.from_pretrained(str(out), str(text_sids / "t2i_index"), device="cpu").retrieve(
        ["a cat on a sofa"], k=2
    )
    assert len(res[0]) == 2


# ------------------------------------------------------------------------------------------------ training data


def test_load_training_data_concatenates_configs(text_sids):
    from trl import ScriptArguments

    from semcore_hf.training.sft import _load_training_data

    ds = str(text_sids / "dataset")
    train, evaluation = _load_training_data(ScriptArguments(dataset_name=ds, dataset_config="t2i, memorize_t2i"), None)
    assert len(train) == N_TRAIN_ROWS and train.column_names == ["prompt", "completion"]
    assert len(evaluation) == 6  # only t2i's test split (memorize has no held-out part)
    sids = {m[0]["content"] for m in train["completion"]}
    assert len(sids) == 8  # every image SID is taught, test images included

    only_t2i, ev = _load_training_data(ScriptArguments(dataset_name=ds, dataset_config="t2i"), None)
    assert len(only_t2i) == 12 and len(ev) == 6
    memo, ev = _load_training_data(ScriptArguments(dataset_name=ds, dataset_config="memorize_t2i"), None)
    assert len(memo) == 8 and ev is None


def test_dataset_name_wins_over_recipe_mixture(text_sids):
    from trl import DatasetMixtureConfig, ScriptArguments
    from trl.scripts.utils import DatasetConfig

    from semcore_hf.training.sft import _load_training_data

    mixture = DatasetMixtureConfig(datasets=[DatasetConfig(path="does/not/exist", name="t2i", split="train")])
    args = ScriptArguments(dataset_name=str(text_sids / "dataset"), dataset_config="memorize_t2i")
    train, _ = _load_training_data(args, mixture)
    assert len(train) == 8


def test_no_dataset_at_all_is_an_error():
    from trl import DatasetMixtureConfig, ScriptArguments

    from semcore_hf.training.sft import _load_training_data

    with pytest.raises(ValueError, match="dataset_name"):
        _load_training_data(ScriptArguments(), DatasetMixtureConfig())


# ------------------------------------------------------------------------------------------------ error paths


def test_missing_recipe_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:  # a usage error: one line, exit status 2
        main(["train", "--config", str(tmp_path / "nope.yaml")])
    assert e.value.code == 2 and "argument --config: no such file:" in capsys.readouterr().err


def test_missing_model_name_or_path(tmp_path, text_sids):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model_kind: causal_lm\nuse_cpu: true\nreport_to: none\n")
    out = tmp_path / "out"
    argv = ["train", "--config", str(recipe), "--output_dir", str(out), "--dataset_name", str(text_sids / "dataset")]
    with pytest.raises(ValueError, match="model_name_or_path"):  # --debug: the error propagates
        main([*argv, "--debug"])
    assert not out.exists()


def test_unknown_train_split(tiny_lm_dir, text_sids, tmp_path):
    argv = train_argv(tiny_lm_dir, tmp_path / "out", text_sids / "dataset", "--max_steps", "1")
    argv += ["--dataset_train_split", "nope"]
    with pytest.raises(ValueError, match="'nope'"):
        main([*argv, "--debug"])


def test_unknown_task_config(tiny_lm_dir, text_sids, tmp_path):
    argv = train_argv(tiny_lm_dir, tmp_path / "out", text_sids / "dataset", "--max_steps", "1")
    argv[argv.index("t2i,memorize_t2i")] = "t2i,no_such_task"
    with pytest.raises(ValueError, match="no_such_task"):
        main([*argv, "--debug"])


def test_moved_lora_output_still_loads(lora_run, text_sids, tmp_path):
    # The adapter records the absolute path of its SID-ready base; a copied/moved output folder must still load.
    import shutil

    from semcore_hf.retrieval import SemCORERetriever

    out, _ = lora_run
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    original = out.with_name("model_away")
    out.rename(original)
    try:
        retriever = SemCORERetriever.from_pretrained(str(moved), str(text_sids / "t2i_index"), device="cpu")
        assert len(retriever.retrieve(["a dog on the grass"], k=2)[0]) == 2
    finally:
        original.rename(out)


def test_model_card_is_built_from_card_data(lora_run, tiny_lm_dir, text_sids):
    from huggingface_hub import ModelCard

    from semcore_hf.identifiers import SIDIndex

    out, _ = lora_run
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    # a local base path means nothing elsewhere: the card data records Hub ids only, the body names the path
    assert "base_model" not in data and tiny_lm_dir in card.text
    assert data["library_name"] == "peft" and {"semcore", "lora"} <= set(data["tags"])
    index = SIDIndex.from_pretrained(str(text_sids / "t2i_index"))
    assert data["sid_config"]["num_clusters"] == index.config.num_clusters
    assert data["sid_config"]["structure_tokens"] == SIDTokenizerExtension().tokens
    assert set(data["framework_versions"]) >= {"semcore_hf", "transformers", "trl", "peft", "torch"}
    assert data["semcore"]["sid_index_in_repo"] is True
    assert "SemCORERetriever.from_pretrained" in card.text and "{{" not in card.text and "{%" not in card.text


def test_output_with_its_index_loads_by_folder_alone(lora_run, text_sids):
    from semcore_hf.identifiers import SIDIndex
    from semcore_hf.retrieval import SemCORERetriever

    out, _ = lora_run
    assert SIDIndex.from_pretrained(str(out / "sid_index")).sids == SIDIndex.from_pretrained(
        str(text_sids / "t2i_index")
    ).sids
    retriever = SemCORERetriever.from_pretrained(str(out), device="cpu")  # the index is the output's sid_index/
    assert len(retriever.retrieve(["a dog on the grass"], k=2)[0]) == 2
