"""`semcore-hf build-sids`: image-caption data -> SID indexes (T2I images, I2T captions) -> TRL training splits.

Example (Flickr30K, Karpathy split, MLLM captions for the image SIDs, a VLM for both directions):

    semcore-hf build-sids --source dataset_flickr30k.json --image-root flickr30k-images \
        --caption-images-with Qwen/Qwen2-VL-2B-Instruct --direction both \
        --embedding-model sentence-transformers/all-MiniLM-L6-v2 --num-clusters 32 --output-dir outputs/sids

Writes `<output-dir>/t2i_index` and/or `<output-dir>/i2t_index` (SIDIndex), `<output-dir>/dataset` (Parquet per
task and split + dataset card; `trl sft --dataset_name <output-dir>/dataset --dataset_config t2i`) and
`<output-dir>/build_report.json` (collision statistics and timings).

Launched with `torchrun --nproc-per-node N` or `accelerate launch --num-processes N` (one machine or several), the N
processes share the embedding (`--embedding_distributed`, set for them) and the first one writes the outputs; within
one process, `--embedding_devices cuda:0 cuda:1` embeds through a sentence-transformers multi-process pool.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from semcore_hf.cli._args import (
    UsageError,
    existing_dir,
    existing_file,
    existing_path,
    local_or_hub,
    non_empty_str,
    positive_int,
    read_json_object,
)
from semcore_hf.identifiers.captioning import CAPTION_PROMPT

logger = logging.getLogger(__name__)

_STOP_WORD_POLICIES = ("semcore", "english", "none")
_TASKS = ("t2i", "i2t", "memorize_t2i", "memorize_i2t", "verify_t2i", "verify_i2t", "caption", "pseudo_t2i")  # prompts


@dataclass
class BuildSIDsArguments:
    """The input / output flags of `semcore-hf build-sids`; the SID flags are `SIDConfig`'s."""

    _argument_group_name = "input, output and what to build"

    source: str = field(
        metadata={
            "help": "Karpathy JSON, image folder with metadata.jsonl, or a save_to_disk dataset folder.",
            "type": existing_path,
        }
    )
    output_dir: str = field(metadata={"help": "Where indexes, dataset and report are written."})
    image_root: str | None = field(
        default=None, metadata={"help": "Base folder of relative image paths.", "type": existing_dir}
    )
    caption_column: list[str] | None = field(default=None, metadata={"help": "Caption column(s) of a HF dataset."})
    image_id_column: str | None = field(default=None, metadata={"help": "Column / key holding unique image ids."})
    drop_empty: bool = field(
        default=False, metadata={"help": "Drop empty captions with a warning instead of failing."}
    )
    hub_prefix: str | None = field(
        default=None,
        metadata={"help": "Also push to the Hub: <PREFIX>-t2i-index, <PREFIX>-i2t-index and <PREFIX>-data."},
    )
    direction: str = field(
        default="t2i", metadata={"help": "Which indexes to build.", "choices": ["t2i", "i2t", "both"]}
    )
    t2i_text: str = field(
        default="generated",
        metadata={
            "help": "Text of image SIDs: MLLM-generated captions (no leakage; DESIGN) or the first ground-truth "
            "caption.",
            "choices": ["generated", "first_caption"],
        },
    )
    generated_captions: str | None = field(
        default=None,
        metadata={"help": "JSON file {image_id: caption} from an earlier captioning run.", "type": existing_file},
    )
    caption_images_with: str | None = field(
        default=None, metadata={"help": "Caption the images with this VLM first.", "type": local_or_hub}
    )
    caption_prompt: str = field(
        default=CAPTION_PROMPT,
        metadata={
            "help": "The captioning instruction (the `caption` training task's, so an aligned captioner is prompted "
            "as it was trained).",
            "type": non_empty_str,
        },
    )
    tasks: list[str] | None = field(
        default=None,
        metadata={"help": "Tasks to emit (default: all of the chosen directions).", "choices": list(_TASKS)},
    )
    text_only: bool = field(default=False, metadata={"help": "No image columns: data for a text-only causal LM."})
    num_negatives: int = field(
        default=1, metadata={"help": "Negatives per positive in verify tasks.", "type": positive_int}
    )
    pseudo_queries: str | None = field(
        default=None,
        metadata={
            "help": "--tasks pseudo_t2i: JSON file {image_id: [pseudo-queries]} from an earlier run.",
            "type": existing_file,
        },
    )
    pseudo_query_model: str | None = field(
        default=None,
        metadata={
            "help": "--tasks pseudo_t2i: a causal LM that writes the pseudo-queries few-shot from train-split pairs "
            "(saved as pseudo_queries.json).",
            "type": local_or_hub,
        },
    )
    num_pseudo_queries: int = field(
        default=3, metadata={"help": "Pseudo-queries per image (--pseudo-query-model).", "type": positive_int}
    )


def _stop_words(value: str):
    """`--stop-words`: a policy name, or a file with one stop word per line (read here, before anything loads)."""
    if value in _STOP_WORD_POLICIES:
        return value
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(_STOP_WORD_POLICIES)} or a file with one stop word per line, got {value!r}"
        )
    with open(value, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip()]


def _embedding_model(value: str) -> str:
    return local_or_hub(value)


def make_parser(prog: str):
    from semcore_hf.cli._parser import CommandParser
    from semcore_hf.identifiers import SIDConfig

    parser = CommandParser(
        [BuildSIDsArguments, SIDConfig],
        prog=prog,
        description=__doc__.split("\n\n")[0],
        field_types={"stop_words": _stop_words, "embedding_model": _embedding_model},
    )
    for action in parser._actions:
        if action.dest == "stop_words":  # the CLI also reads a list of stop words from a file
            action.help = (action.help or "") + " Or a file with one stop word per line."
    return parser


def _check_arguments(args: BuildSIDsArguments):
    """Check every flag combination before any data is loaded; returns the generated captions (or `None`)."""
    from semcore_hf.data.builder import I2T_TASKS, T2I_INDEX_TASKS

    if os.path.exists(args.output_dir) and not os.path.isdir(args.output_dir):
        raise UsageError(f"--output-dir {args.output_dir} is a file, not a folder")
    directions = {"t2i": ("t2i",), "i2t": ("i2t",), "both": ("t2i", "i2t")}[args.direction]
    for task in args.tasks or ():
        direction = "t2i" if task in T2I_INDEX_TASKS else "i2t" if task in I2T_TASKS else None
        if direction is not None and direction not in directions:  # `caption` needs no index
            raise UsageError(
                f"--tasks {task} needs the {direction} index, which --direction {args.direction} does not build; "
                f"use --direction {direction} or both"
            )
    if args.text_only and "i2t" in (args.tasks or ()):
        raise UsageError("--tasks i2t (image -> caption SID) needs images; it cannot be built with --text-only")
    wants_pseudo = "pseudo_t2i" in (args.tasks or ())
    if wants_pseudo and not (args.pseudo_queries or args.pseudo_query_model):
        raise UsageError("--tasks pseudo_t2i needs --pseudo-queries FILE or --pseudo-query-model MODEL")
    if not wants_pseudo and (args.pseudo_queries or args.pseudo_query_model):
        raise UsageError("--pseudo-queries / --pseudo-query-model are for --tasks pseudo_t2i, which is not requested")
    if args.pseudo_queries and args.pseudo_query_model:
        raise UsageError("pass --pseudo-queries or --pseudo-query-model, not both")
    if args.generated_captions:
        return read_json_object(args.generated_captions, "--generated-captions")
    return None


def _captions_from_vlm(rows, model_id: str, prompt: str) -> dict[str, str]:
    from semcore_hf.identifiers import caption_images
    from semcore_hf.modeling import load_model_and_processor

    model, processor, _ = load_model_and_processor(model_id, "image_text_to_text")
    out = {}
    for split, ds in rows.items():
        logger.info("Captioning %d %s images with %s", len(ds), split, model_id)
        caps = caption_images(ds["image"], model, processor, prompt=prompt)
        out.update(zip(ds["image_id"], caps))
    return out


def _read_pseudo_queries(path: str) -> dict[str, list[str]]:
    data = read_json_object(path, "--pseudo-queries")
    bad = [k for k, v in data.items() if not isinstance(v, list) or not all(isinstance(q, str) for q in v)]
    if bad:
        raise UsageError(f"--pseudo-queries {path}: expected {{image_id: [query, ...]}}; {bad[0]!r} is not a list")
    return data


def _pseudo_queries_from_lm(rows, model_id: str, text: str, num_queries: int, seed: int) -> dict[str, list[str]]:
    from semcore_hf.data.pseudo_queries import pseudo_queries_for_source
    from semcore_hf.modeling import get_tokenizer, load_model_and_processor

    model, tokenizer, _ = load_model_and_processor(model_id, "causal_lm")
    logger.info("Writing %d pseudo-queries per image with %s", num_queries, model_id)
    return pseudo_queries_for_source(
        rows, model, get_tokenizer(tokenizer), text=text, num_queries=num_queries, seed=seed
    )


def describe_collisions(rep: dict) -> str:
    """One line of `SIDIndex.collision_report()`: SIDs, collision groups by cause, empty lexical IDs, coverage."""
    line = (
        f"{rep['num_targets']} targets, {rep['num_sids']} SIDs, {rep['num_groups']} collision groups "
        f"({100 * rep['fraction_in_groups']:.1f}% of targets, largest {rep['largest_group']}"
    )
    if "groups_different_texts" in rep:
        line += f"; {rep['groups_identical_texts']} of identical texts, {rep['groups_different_texts']} of different"
    line += ")"
    if "sids_with_empty_lexical_id" in rep:
        line += f", {rep['sids_with_empty_lexical_id']} empty lexical IDs"
    if "global_word_coverage" in rep:
        line += f", global-word coverage {100 * rep['global_word_coverage']:.1f}%"
    return line


def run(args: BuildSIDsArguments, config) -> int:
    from semcore_hf.cli.evaluate import launched_process_group, process_device

    with launched_process_group() as (rank, world, local_rank):
        if world > 1:  # every process embeds its share of the texts; all build the same indexes
            config.embedding_distributed = True
            config.device = process_device(config.device, world, local_rank)
        return _run(args, config, rank)


def _run(args: BuildSIDsArguments, config, rank: int = 0) -> int:
    from semcore_hf.data import (
        build_sid_dataset,
        i2t_targets,
        load_image_caption_source,
        push_sid_dataset_to_hub,
        save_sid_dataset,
        t2i_targets,
    )
    from semcore_hf.identifiers import SIDBuilder

    out = Path(args.output_dir)
    generated_captions = _check_arguments(args)
    pseudo = _read_pseudo_queries(args.pseudo_queries) if args.pseudo_queries else None
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    source_kwargs = dict(image_root=args.image_root, drop_empty=args.drop_empty)
    if args.caption_column:
        source_kwargs["caption_column"] = (
            args.caption_column if len(args.caption_column) > 1 else args.caption_column[0]
        )
    if args.image_id_column:
        source_kwargs["image_id_column"] = args.image_id_column
    if generated_captions is not None:
        source_kwargs["generated_captions"] = generated_captions
    # Every image is decoded once here, before any captioning or embedding (a truncated file fails now).
    rows = load_image_caption_source(args.source, **source_kwargs)
    if args.caption_images_with:
        generated = _captions_from_vlm(rows, args.caption_images_with, args.caption_prompt)
        if rank == 0:
            (out / "generated_captions.json").parent.mkdir(parents=True, exist_ok=True)
            (out / "generated_captions.json").write_text(json.dumps(generated, indent=1))
        source_kwargs["generated_captions"] = generated
        rows = load_image_caption_source(args.source, **source_kwargs, check_images=False)
    timings["load"] = time.perf_counter() - t0

    builder = SIDBuilder(config)
    report: dict = {"config": config.to_dict(), "num_images": sum(len(d) for d in rows.values())}
    indexes = {}
    if args.direction in ("t2i", "both"):
        t = time.perf_counter()
        ids, texts = t2i_targets(rows, text=args.t2i_text)
        indexes["t2i"] = builder.build(texts, ids, target_modality="image")
        if rank == 0:
            indexes["t2i"].save_pretrained(out / "t2i_index")
        timings["t2i_index"] = time.perf_counter() - t
    if args.direction in ("i2t", "both"):
        t = time.perf_counter()
        ids, texts = i2t_targets(rows)
        indexes["i2t"] = builder.build(texts, ids, target_modality="text")
        if rank == 0:
            indexes["i2t"].save_pretrained(out / "i2t_index")
        timings["i2t_index"] = time.perf_counter() - t
    if rank != 0:  # the other processes helped embed; the first one writes the dataset and the report
        return 0
    for direction, index in indexes.items():
        report[f"{direction}_collisions"] = index.collision_report()
        rep = report[f"{direction}_collisions"]
        print(f"[{direction}] {describe_collisions(rep)}")

    if args.pseudo_query_model:
        t = time.perf_counter()
        pseudo = _pseudo_queries_from_lm(
            rows, args.pseudo_query_model, args.t2i_text, args.num_pseudo_queries, config.seed
        )
        (out / "pseudo_queries.json").write_text(json.dumps(pseudo, indent=1))
        timings["pseudo_queries"] = time.perf_counter() - t

    t = time.perf_counter()
    data = build_sid_dataset(
        rows,
        t2i_index=indexes.get("t2i"),
        i2t_index=indexes.get("i2t"),
        tasks=args.tasks,
        text_only=args.text_only,
        num_negatives=args.num_negatives,
        seed=config.seed,
        check_images=False,  # decoded when the source was loaded
        pseudo_queries=pseudo,
    )
    save_sid_dataset(data, out / "dataset")
    timings["dataset"] = time.perf_counter() - t
    report["rows"] = {task: {split: len(ds) for split, ds in dd.items()} for task, dd in data.items()}
    report["timings_s"] = timings
    (out / "build_report.json").write_text(json.dumps(report, indent=2))
    for task, splits in report["rows"].items():
        print(f"  {task}: " + ", ".join(f"{s}={n}" for s, n in splits.items()))
    print(f"Written to {out}")
    if args.hub_prefix:
        for direction, index in indexes.items():
            index.push_to_hub(f"{args.hub_prefix}-{direction}-index")
        push_sid_dataset_to_hub(out / "dataset", f"{args.hub_prefix}-data")
    return 0
