"""One SemCORE experiment on the Tux Paint stamps, in reusable steps: the demo and the ablation script run them.

Splits (by a stable hash of the stamp id, so every run and every identifier kind sees the same ones): 70% train, 10%
validation (the GSV weight is chosen there), 20% test. A slice of the test images (`HELD_OUT`, ~5% of all stamps) is
held out of everything (index, memorisation, training) and added after training with `SemCORERetriever.add`: the
growing-corpus rows.
"""

from __future__ import annotations

import copy
import logging
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_EXCLUDE_PREFIX = "symbols/alphabets"  # the letters' descriptions differ only by letter case
QUICK_CATEGORIES = ("animals", "food", "vehicles")
K = (1, 5, 10)


def _bucket(image_id: str) -> int:
    return zlib.crc32(image_id.encode()) % 20


def split_of(image_id: str) -> str:
    """`"test"` (4 of 20 hash buckets), `"validation"` (2 of 20) or `"train"`."""
    b = _bucket(image_id)
    return "test" if b < 4 else "validation" if b < 6 else "train"


def is_held_out(image_id: str) -> bool:
    """One of the 4 test buckets: held out of the index and of training, added afterwards."""
    return _bucket(image_id) == 0


def sid_config(minilm: str, seed: int, **settings):
    """The SIDConfig of every demo and ablation run: MiniLM, collisions resolved, seeded; `settings` on top."""
    from semcore_hf.identifiers import SIDConfig

    return SIDConfig(embedding_model=minilm, resolve_collisions=True, seed=seed, **settings)


def stamp_rows(stamps_dir: str, quick: bool):
    """The stamps as a normalised image-caption source with train / validation / test splits."""
    from datasets import Dataset, DatasetDict

    from semcore_hf.cli._assets import iter_tuxpaint_records
    from semcore_hf.data import load_image_caption_source

    by_split: dict[str, list[dict]] = defaultdict(list)
    for r in iter_tuxpaint_records(stamps_dir):
        if r["image_id"].startswith(_EXCLUDE_PREFIX) or (quick and r["category"] not in QUICK_CATEGORIES):
            continue
        by_split[split_of(r["image_id"])].append(
            {
                "image": r["image_path"],
                "image_id": r["image_id"],
                "captions": [r["caption"]],
                "generated_caption": r["name"],
            }
        )
    raw = DatasetDict({s: Dataset.from_list(rows) for s, rows in sorted(by_split.items())})
    return load_image_caption_source(raw, caption_column="captions", image_id_column="image_id")


def relevant_by_caption(query_set, rows, split: str = "test"):
    """Every gallery image whose description equals the query's (case-insensitive) is relevant."""
    by_text = defaultdict(set)
    gallery = set(query_set.gallery)
    for image_id, caps in zip(rows[split]["image_id"], rows[split]["captions"]):
        if str(image_id) in gallery:
            by_text[caps[0].strip().lower()].add(str(image_id))
    query_set.relevant = [sorted(by_text[q.strip().lower()]) for q in query_set.queries]
    return query_set


def query_sets(rows, held_out: set[str]):
    """(validation, test, growing): test without the held-out images; growing = their queries over all test images."""
    from semcore_hf.evaluation import QuerySet, build_query_set

    val = relevant_by_caption(build_query_set(rows, "t2i", "validation"), rows, "validation")
    full = build_query_set(rows, "t2i", "test")
    keep = [i for i, rel in enumerate(full.relevant) if rel[0] not in held_out]
    grow = [i for i, rel in enumerate(full.relevant) if rel[0] in held_out]

    def subset(idx, gallery):
        qs = QuerySet("t2i", [full.query_ids[i] for i in idx], [full.queries[i] for i in idx], [], gallery)
        return relevant_by_caption(qs, rows, "test")

    test = subset(keep, [g for g in full.gallery if g not in held_out])
    growing = subset(grow, list(full.gallery))
    return val, test, growing


@dataclass
class Run:
    """One identifier kind trained and evaluated; `results` maps a row name to `evaluate_retriever` output."""

    kind: str
    index: Any
    model_dir: Path
    results: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    gsv: dict | None = None


def build_index(rows, held_out: set[str], config) -> tuple[Any, dict[str, str]]:
    """The T2I index over every image except the held-out ones; returns it and {image id: image text} of all."""
    from semcore_hf.data import t2i_targets
    from semcore_hf.identifiers import SIDBuilder

    ids, texts = t2i_targets(rows, text="generated")
    kept = [(i, t) for i, t in zip(ids, texts) if i not in held_out]
    index = SIDBuilder(config).build([t for _, t in kept], [i for i, _ in kept], target_modality="image")
    return index, dict(zip(ids, texts))


def build_data(
    rows,
    index,
    held_out: set[str],
    out: Path,
    tasks,
    seed: int,
    i2t_index=None,
    text_only: bool = True,
    max_verify_rows: int | None = None,
    pseudo_queries: dict[str, list[str]] | None = None,
):
    """TRL splits of `tasks` without any row of a held-out image, saved under `out`; returns the training rows.

    `max_verify_rows` caps each `verify_*` task's training split (a seeded sample): on a CPU the verification pairs
    of every caption would cost more than the rest of the data together.
    """
    from datasets import DatasetDict

    from semcore_hf.data import build_sid_dataset, save_sid_dataset
    from semcore_hf.data.builder import EVERY_SPLIT_TASKS

    kept = DatasetDict({s: ds.filter(lambda r: r["image_id"] not in held_out) for s, ds in rows.items()})
    data = build_sid_dataset(
        kept,
        t2i_index=index,
        i2t_index=i2t_index,
        tasks=list(tasks),
        text_only=text_only,
        seed=seed,
        pseudo_queries=pseudo_queries,
    )
    if max_verify_rows:
        for task in [t for t in data if t.startswith("verify")]:
            train = data[task]["train"]
            if len(train) > max_verify_rows:
                data[task]["train"] = train.shuffle(seed=seed).select(range(max_verify_rows))
    save_sid_dataset(data, out, save_arrow=False, pretty_name="Tux Paint stamps SemCORE demo")
    n_rows = 0
    for task, dd in data.items():
        n_rows += sum(len(d) for d in dd.values()) if task in EVERY_SPLIT_TASKS else len(dd["train"])
    return n_rows


def pseudo_queries(rows, model_dir: str, path: Path, seed: int, num_queries: int = 3) -> dict[str, list[str]]:
    """Pseudo-queries of every image, written few-shot by the model at `model_dir`; cached as JSON at `path`."""
    import json

    from semcore_hf.data.pseudo_queries import pseudo_queries_for_source
    from semcore_hf.modeling import get_tokenizer, load_model_and_processor

    if path.is_file():
        return json.loads(path.read_text())
    from semcore_hf.modeling.precision import cpu_has_fast_bf16

    model, tokenizer, _ = load_model_and_processor(model_dir, "causal_lm")
    autocast = "bf16" if cpu_has_fast_bf16() else None
    out = pseudo_queries_for_source(
        rows, model.eval(), get_tokenizer(tokenizer), num_queries=num_queries, seed=seed, batch_size=32,
        autocast=autocast,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def build_i2t_index(rows, held_out: set[str], config) -> tuple[Any, dict[str, str]]:
    """The I2T index over every caption except those of held-out images; returns it and {caption id: caption}."""
    from semcore_hf.data import i2t_targets
    from semcore_hf.identifiers import SIDBuilder

    ids, texts = i2t_targets(rows)
    kept = [(i, t) for i, t in zip(ids, texts) if i.rsplit("#", 1)[0] not in held_out]
    index = SIDBuilder(config).build([t for _, t in kept], [i for i, _ in kept], target_modality="text")
    return index, dict(zip(ids, texts))


def train(recipe: str, base_model: str, data_dir: Path, tasks, out: Path, index_dir: Path | None, epochs, seed: int):
    """`semcore-hf train` on the recipe (the errors propagate: `--debug`)."""
    from semcore_hf.cli.main import main as cli_main

    argv = ["--debug", "train", "--config", recipe, "--model_name_or_path", base_model, "--output_dir", str(out)]
    argv += ["--dataset_name", str(data_dir), "--dataset_config", ",".join(tasks), "--seed", str(seed)]
    if index_dir is not None:
        argv += ["--sid_index", str(index_dir)]
    if epochs is not None:
        argv += ["--num_train_epochs", str(epochs)]
    cli_main(argv)


def evaluate_kind(
    run: Run,
    qsets,
    texts_by_id: dict[str, str],
    num_beams: int,
    gsv: bool,
    minilm: str,
    direction: str = "t2i",
    candidate_images: dict[str, str] | None = None,
    max_num_beams: int | None = None,
    autocast: str | None = None,
) -> None:
    """Test rows of one trained model and direction: generation, + GSV (weight tuned on validation) and, for T2I,
    the growing corpus (`qsets` = (validation, test, growing or None)). `max_num_beams` caps the search's widening
    (`num_beams` turns it off: one beam search per query, its ranks still flagged exact or not).

    `texts_by_id` holds the candidate texts GSV is shown: the image texts (T2I with a text-only model) or the
    captions (I2T); `candidate_images` the candidate images (T2I with a VLM). `autocast` (`"bf16"`) runs search and
    GSV with the model body under autocast (`semcore_hf.modeling.autocast_inference`).
    """
    from semcore_hf.evaluation import evaluate_retriever, tune_gsv_weight
    from semcore_hf.retrieval import SemCORERetriever

    val, test, growing = qsets
    label = {"semantic": "SemCORE SIDs", "numeric": "numeric IDs", "atomic": "atomic IDs", "text": "plain-text IDs"}
    name = label[run.kind]
    t = time.perf_counter()
    retriever = SemCORERetriever.from_pretrained(
        str(run.model_dir),
        run.index,
        device="cpu",
        gallery=test.gallery,
        gsv=gsv,
        candidate_texts=texts_by_id,
        candidate_images=candidate_images,
        autocast=autocast,
    )
    search = {"num_beams": num_beams, "max_num_beams": max_num_beams}
    run.results[name] = evaluate_retriever(retriever, test, k=K, show_progress=True, **search)
    run.timings["eval"] = time.perf_counter() - t

    def sibling(gallery):  # the same model on another gallery
        return SemCORERetriever(
            retriever.model,
            retriever.processing_class,
            copy.deepcopy(run.index),  # `add` grows an index in place
            extension=retriever.extension,
            gsv=retriever.gsv,
            candidate_texts=texts_by_id,
            candidate_images=candidate_images,
            gallery=gallery,
            autocast=retriever.autocast,
        )

    if gsv:
        t = time.perf_counter()
        run.gsv = tune_gsv_weight(sibling(val.gallery), val, k=K, **search)
        weight = run.gsv["best_weight"]
        res = evaluate_retriever(retriever, test, k=K, gsv_weight=weight, show_progress=True, **search)
        res["gsv_weight"] = weight
        run.results[f"{name} + GSV (weight {weight:g}, chosen on validation)"] = res
        run.timings["gsv"] = time.perf_counter() - t
    if growing is not None and direction == "t2i" and run.kind in ("semantic", "numeric", "text"):
        # atomic IDs would need new, untrained tokens for the added targets
        from sentence_transformers import SentenceTransformer

        t = time.perf_counter()
        held = [g for g in growing.gallery if g not in set(run.index.target_ids)]
        grow = sibling([g for g in growing.gallery if g not in held])
        grow.add(held, [texts_by_id[h] for h in held], embedder=SentenceTransformer(minilm, device="cpu"))
        run.results[f"{name}, targets added after training"] = evaluate_retriever(
            grow, growing, k=K, show_progress=True, **search
        )
        run.timings["growing"] = time.perf_counter() - t


def untrained_row(base_dir: str, index, test, num_beams: int, autocast: str | None = None) -> dict:
    from semcore_hf.evaluation import evaluate_retriever
    from semcore_hf.retrieval import SemCORERetriever

    base = SemCORERetriever.from_pretrained(base_dir, index, device="cpu", gallery=test.gallery, autocast=autocast)
    # One beam search per query: an untrained model's flat scores almost never certify a rank, so widening would
    # search up to max(4 x beams, 32) beams per query for a row that is at chance either way.
    return evaluate_retriever(base, test, k=K, num_beams=num_beams, max_num_beams=num_beams, show_progress=True)


def dense_row(minilm: str, qs, texts_by_id: dict[str, str]) -> dict:
    from sentence_transformers import SentenceTransformer

    from semcore_hf.evaluation import dense_text_retrieval, recall_at_k

    t = time.perf_counter()
    gallery_texts = [texts_by_id[g] for g in qs.gallery]
    ranked = dense_text_retrieval(SentenceTransformer(minilm, device="cpu"), qs.queries, qs.gallery, gallery_texts)
    seconds = (time.perf_counter() - t) / max(len(qs), 1)
    return {"metrics": recall_at_k(ranked, qs.relevant, k=K), "seconds_per_query": seconds}


# ---------------------------------------------------------------------------------------------------- the VLM
def align_vlm(recipe: str, vlm_dir: str, rows, held_out: set[str], out: Path, epochs, seed: int) -> Path:
    """Stage 1: train the VLM's new projector alone (language model and vision tower frozen) to caption the
    training images with their human captions. Returns the aligned model's folder."""
    from datasets import DatasetDict

    from semcore_hf.cli.main import main as cli_main
    from semcore_hf.data import build_sid_dataset, save_sid_dataset

    train_only = DatasetDict({"train": rows["train"].filter(lambda r: r["image_id"] not in held_out)})
    data = build_sid_dataset(train_only, tasks=["caption"], seed=seed)
    save_sid_dataset(data, out / "caption_data", save_arrow=False, pretty_name="Tux Paint stamps: captions")
    argv = [
        "--debug",
        "train",
        "--config",
        recipe,
        "--model_name_or_path",
        vlm_dir,
        "--output_dir",
        str(out / "aligned"),
    ]
    argv += ["--dataset_name", str(out / "caption_data"), "--dataset_config", "caption", "--seed", str(seed)]
    # LLaVA's stage 1: the projector alone at a high rate. Trained with the language model on a few hundred images,
    # the model learns the captions' prior instead ("A lion." for every image, measured on the demo data).
    argv += ["--train_only_projector", "true", "--learning_rate", "1e-3"]
    if epochs is not None:
        argv += ["--num_train_epochs", str(epochs)]
    cli_main(argv)
    return out / "aligned"


def caption_all(model_dir: Path, rows, batch_size: int = 8) -> dict[str, str]:
    """{image id: caption} of every image, generated greedily by the aligned VLM (`caption_images`)."""
    from datasets import Image

    from semcore_hf.identifiers import caption_images
    from semcore_hf.modeling import load_model_and_processor

    model, processor, _ = load_model_and_processor(str(model_dir), "image_text_to_text")
    model.eval()
    out: dict[str, str] = {}
    for ds in rows.values():
        images = ds.cast_column("image", Image(decode=False))["image"]
        caps = caption_images(images, model, processor, batch_size=batch_size, max_new_tokens=16)
        out.update(zip((str(i) for i in ds["image_id"]), caps))
    return out


def caption_report(rows, captions: dict[str, str], held_out: set[str]) -> dict:
    """How good the generated captions are, per split: how many are distinct, how many equal the human caption
    (case and punctuation aside), and the share that names at least one content word of it."""
    from semcore_hf.identifiers.text import SEMCORE_STOP_WORDS, words_of

    def content(text: str) -> set[str]:
        return {w for w in words_of(text) if w not in SEMCORE_STOP_WORDS}

    report = {}
    for split, ds in rows.items():
        pairs = [(captions[str(i)], caps[0]) for i, caps in zip(ds["image_id"], ds["captions"])]
        if split == "train":
            pairs = [p for p, i in zip(pairs, ds["image_id"]) if str(i) not in held_out]
        n = max(len(pairs), 1)
        report[split] = {
            "images": len(pairs),
            "distinct_generated": len({g.strip().lower() for g, _ in pairs}),
            "distinct_human": len({h.strip().lower() for _, h in pairs}),
            "exact_match": sum(content(g) == content(h) for g, h in pairs) / n,
            "shares_a_content_word": sum(bool(content(g) & content(h)) for g, h in pairs) / n,
        }
    return report


def image_paths(rows) -> dict[str, str]:
    """{image id: image file} of every stamp."""
    from datasets import Image

    return {
        str(i): im["path"]
        for ds in rows.values()
        for i, im in zip(ds["image_id"], ds.cast_column("image", Image(decode=False))["image"])
    }


def with_generated_captions(rows, captions: dict[str, str]):
    """The source rows with their `generated_caption` replaced by the VLM's (the text image SIDs are built from)."""
    from semcore_hf.data.sources import _attach_generated

    return _attach_generated(rows, captions)


def i2t_query_sets(rows, held_out: set[str]):
    """(validation, test) image queries over the split's captions; a caption is relevant to every image whose
    description it equals (stamps of one kind share descriptions)."""
    from semcore_hf.data.sources import caption_id
    from semcore_hf.evaluation import QuerySet, build_query_set

    def make(split):
        full = build_query_set(rows, "i2t", split)
        keep = [i for i, q in enumerate(full.query_ids) if q not in held_out]
        text_of = {
            caption_id(str(i), j): c.strip().lower()
            for i, caps in zip(rows[split]["image_id"], rows[split]["captions"])
            for j, c in enumerate(caps)
            if str(i) not in held_out
        }
        gallery = [g for g in full.gallery if g in text_of]
        by_text = defaultdict(list)
        for g in gallery:
            by_text[text_of[g]].append(g)
        relevant = [sorted({c for r in full.relevant[i] for c in by_text[text_of[r]]}) for i in keep]
        return QuerySet("i2t", [full.query_ids[i] for i in keep], [full.queries[i] for i in keep], relevant, gallery)

    return make("validation"), make("test")


def dense_i2t_row(vision_dir: str, minilm: str, rows, qs, held_out: set[str]) -> dict:
    """The honest dense I2T baseline without an aligned text encoder: the query image's nearest training image
    (DINOv2 features, cosine) lends its human caption, and the gallery captions are ranked by MiniLM similarity to it.
    """
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import CLIPImageProcessorPil, Dinov2Model

    from semcore_hf.cli._assets import IMAGENET_MEAN, IMAGENET_STD
    from semcore_hf.evaluation import recall_at_k
    from semcore_hf.modeling import open_image

    t = time.perf_counter()
    model = Dinov2Model.from_pretrained(vision_dir).eval()
    proc = CLIPImageProcessorPil(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}, image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )  # fmt: skip

    def embed(images):
        feats = []
        for i in range(0, len(images), 16):
            pixels = proc(images=[open_image(im) for im in images[i : i + 16]], return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                feats.append(torch.nn.functional.normalize(model(pixel_values=pixels).pooler_output, dim=-1))
        return torch.cat(feats).numpy()

    train = rows["train"].filter(lambda r: r["image_id"] not in held_out)
    train_emb = embed(list(train["image"]))
    query_emb = embed(list(qs.queries))
    nearest = (query_emb @ train_emb.T).argmax(1)
    borrowed = [train["captions"][int(j)][0] for j in nearest]
    text_of = {}
    for split in rows:
        for i, caps in zip(rows[split]["image_id"], rows[split]["captions"]):
            for j, c in enumerate(caps):
                text_of[f"{i}#{j}"] = c
    st = SentenceTransformer(minilm, device="cpu")
    q = st.encode(borrowed, normalize_embeddings=True, convert_to_numpy=True)
    g = st.encode([text_of[c] for c in qs.gallery], normalize_embeddings=True, convert_to_numpy=True)
    order = np.argsort(-(q @ g.T), axis=1)[:, : max(K)]
    ranked = [[qs.gallery[j] for j in row] for row in order]
    seconds = (time.perf_counter() - t) / max(len(qs), 1)
    return {"metrics": recall_at_k(ranked, qs.relevant, k=K), "seconds_per_query": seconds}
