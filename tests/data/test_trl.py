"""The emitted splits are accepted by TRL's SFTTrainer as saved (Parquet via load_dataset, extra columns included)."""

from __future__ import annotations

import datasets
import pytest

from semcore_hf.data import build_sid_dataset, save_sid_dataset


def _args(tmp_path, max_length):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(tmp_path / "run"),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        save_strategy="no",
        max_length=max_length,
        dataset_num_proc=None,
    )


@pytest.fixture(scope="module")
def saved(source, indexes, tmp_path_factory):
    root = tmp_path_factory.mktemp("trl_data")
    t2i_index, i2t_index = indexes
    text = build_sid_dataset(source, t2i_index=t2i_index, tasks=["t2i"], text_only=True, cache_dir=root / "c")
    vlm = build_sid_dataset(source, i2t_index=i2t_index, tasks=["i2t"], cache_dir=root / "c")
    save_sid_dataset({**text, **vlm}, root / "out", save_arrow=False)
    return root / "out"


def test_t2i_split_trains_tiny_causal_lm(saved, tiny_lm_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    train = datasets.load_dataset(str(saved), name="t2i", split="train")
    assert {"target_id", "sid", "query_id"} <= set(train.column_names)  # extra columns are fine for TRL
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_lm_dir),
        args=_args(tmp_path, 128),
        train_dataset=train,
        processing_class=AutoTokenizer.from_pretrained(tiny_lm_dir),
    )
    # only the completion (the SID) is supervised
    example = trainer.train_dataset[0]
    labels = example["labels"]
    assert 0 < sum(label != -100 for label in labels) < len(labels)
    out = trainer.train()
    assert out.global_step == 1


def test_i2t_split_trains_tiny_llava(saved, tiny_llava_dir, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTTrainer

    train = datasets.load_dataset(str(saved), name="i2t", split="train")
    trainer = SFTTrainer(
        model=AutoModelForImageTextToText.from_pretrained(tiny_llava_dir),
        args=_args(tmp_path, None),  # truncation breaks image tokens (trl #4289)
        train_dataset=train,
        processing_class=AutoProcessor.from_pretrained(tiny_llava_dir),
    )
    out = trainer.train()
    assert out.global_step == 1
