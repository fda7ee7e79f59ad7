"""`semcore-hf evaluate`: Recall@K / MRR of a SID-trained model under the standard CMR protocol.

    semcore-hf evaluate --model outputs/t2i_lora --index outputs/sids/t2i_index \
        --source dataset_flickr30k.json --image-root flickr30k-images --direction t2i --split test

Writes `<output-dir>/metrics.json`, `<output-dir>/predictions.jsonl` and `<output-dir>/recall.png` (with the
`plots` extra), and adds the Recall@K / MRR to the model card's `model-index`: in place for a local model folder,
into `<output-dir>/README.md` for a Hub model (`--push_model_card` commits it to the repo).

Launched with `torchrun --nproc-per-node N` or `accelerate launch --num-processes N` (one machine or several), the N
processes split the queries and the first one writes exactly what a single process writes (timings aside); each
process uses the GPU of its local rank, or the CPU (gloo) without GPUs:

    torchrun --nproc-per-node 2 -m semcore_hf.cli.main evaluate --model ... --index ... --source ...
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from semcore_hf.cli._args import (
    SearchArguments,
    existing_dir,
    existing_path,
    local_or_hub,
    non_empty_str,
    positive_int,
)

logger = logging.getLogger(__name__)


@dataclass
class EvaluateArguments:
    """The flags of `semcore-hf evaluate` (also the keys of its `--config` YAML)."""

    model: str = field(metadata={"help": "Trained model folder or Hub id.", "type": local_or_hub})
    source: str = field(metadata={"help": "The image-caption source given to build-sids.", "type": existing_path})
    index: str | None = field(
        default=None,
        metadata={
            "help": "SIDIndex of the direction's targets (default: the model's own sid_index/).",
            "type": local_or_hub,
        },
    )
    image_root: str | None = field(
        default=None, metadata={"help": "Base folder of relative image paths.", "type": existing_dir}
    )
    direction: str = field(default="t2i", metadata={"help": "The retrieval direction.", "choices": ["t2i", "i2t"]})
    split: str = field(default="test", metadata={"help": "The split to evaluate.", "type": non_empty_str})
    k: list[int] = field(
        default_factory=lambda: [1, 5, 10], metadata={"help": "Cut-offs K.", "type": positive_int, "aliases": ["-k"]}
    )
    max_queries: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N queries (quick checks).", "type": positive_int}
    )
    full_index: bool = field(default=False, metadata={"help": "Rank every target of the index, not the split's."})
    output_dir: str = field(default="outputs/eval", metadata={"help": "Where metrics and predictions are written."})
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "The dataset's name in the model card's model-index (default: the source's file name)."},
    )
    update_model_card: bool = field(
        default=True,
        metadata={"help": "Add Recall@K / MRR to the model card's model-index (a local model's README.md)."},
    )
    push_model_card: bool = field(
        default=False, metadata={"help": "Hub models: commit the updated card to the model's repo."}
    )
    plot: bool = field(default=True, metadata={"help": "Write recall.png (needs matplotlib: semcore_hf[plots])."})


def make_parser(prog: str):
    from semcore_hf.cli._parser import CommandParser

    return CommandParser([EvaluateArguments, SearchArguments], prog=prog, description=__doc__.split("\n\n")[0])


@contextlib.contextmanager
def launched_process_group() -> Iterator[tuple[int, int, int]]:
    """`(rank, world_size, local_rank)` of this process; under `torchrun` / `accelerate launch` (``WORLD_SIZE`` > 1)
    the torch.distributed process group is initialised from the launcher's environment (NCCL with GPUs, else gloo)
    for the duration, unless it already is."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield 0, 1, 0
        return
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    created = not dist.is_initialized()
    if created:
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)  # NCCL's object collectives use the current device
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size(), local_rank
    finally:
        if created:
            dist.destroy_process_group()


def process_device(device: str | None, world: int, local_rank: int) -> str | None:
    """One GPU per process when several run: `cuda` (or no `--device`, with GPUs) means the local rank's."""
    if world > 1 and device in (None, "cuda"):
        import torch

        if torch.cuda.is_available():
            return f"cuda:{local_rank}"
    return device


def run(args: EvaluateArguments, search: SearchArguments) -> int:
    with launched_process_group() as (rank, world, local_rank):
        return _run(args, search, rank, world, local_rank)


def _run(args: EvaluateArguments, search: SearchArguments, rank: int, world: int, local_rank: int) -> int:
    from semcore_hf._io import atomic_write_text
    from semcore_hf.data import load_image_caption_source
    from semcore_hf.evaluation import build_query_set, evaluate_retriever, plot_recall_curves
    from semcore_hf.retrieval import SemCORERetriever

    # Images are decoded up front only where they are the queries (I2T); T2I ranks image ids.
    check_images = True if args.direction == "i2t" else "exists"
    rows = load_image_caption_source(args.source, image_root=args.image_root, check_images=check_images)
    qs = build_query_set(rows, args.direction, args.split).head(args.max_queries)
    device = process_device(search.device, world, local_rank)
    retriever = SemCORERetriever.from_pretrained(
        args.model,
        args.index,
        device=device,
        gallery=None if args.full_index else qs.gallery,
        autocast=search.autocast,
    )
    res = evaluate_retriever(
        retriever,
        qs,
        k=args.k,
        num_beams=search.num_beams,
        batch_size=search.batch_size,
        max_num_beams=search.max_num_beams,
        certify=search.certify,
    )
    if rank != 0:  # every process holds the whole result (evaluate_retriever gathers it); the first one writes it
        return 0
    out = Path(args.output_dir)
    summary = {"direction": args.direction, "split": args.split, "num_queries": len(qs), "gallery": len(qs.gallery)}
    summary["num_processes"] = world
    summary.update(
        metrics=res["metrics"],
        seconds_per_query=res["seconds_per_query"],
        exact_fraction=res["exact_fraction"],
        exact_at_1_fraction=res["exact_at_1_fraction"],
    )
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2))
    atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in res["predictions"]))
    if args.plot:
        try:
            plot_recall_curves({f"SemCORE {args.direction.upper()}": res["metrics"]}, out / "recall.png")
        except ImportError:  # matplotlib is the optional `plots` extra
            logger.warning("recall.png not written: install the plots extra (pip install 'semcore_hf[plots]').")
    if args.update_model_card:
        from semcore_hf.hub import update_model_card
        from semcore_hf.model_cards import eval_results

        name = args.dataset_name or Path(args.source).stem
        results = eval_results(res["metrics"], args.direction, dataset_name=name, split=args.split)
        update_model_card(args.model, results, output_path=out / "README.md", push=args.push_model_card)
    m = res["metrics"]
    print(" | ".join(f"{key} {100 * m[key]:.1f}" for key in m if key.startswith("recall@")) + f" | mrr {m['mrr']:.3f}")
    print(
        f"{len(qs)} queries, gallery {len(qs.gallery)}, {1000 * res['seconds_per_query']:.0f} ms/query, "
        f"first rank certified exact for {100 * res['exact_at_1_fraction']:.0f}% of queries, the whole ranking for "
        f"{100 * res['exact_fraction']:.0f}% -> {out}"
    )
    return 0
