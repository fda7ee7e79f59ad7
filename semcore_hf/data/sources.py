"""Image-caption sources, normalised to one row per image, and the retrieval targets derived from them.

Every source (a `datasets.Dataset` / `DatasetDict`, an image folder with a captions JSONL, a Karpathy-style JSON)
becomes a `datasets.DatasetDict` keyed by split whose rows are:

| column | feature | meaning |
|---|---|---|
| `image_id` | `Value("string")` | unique across all splits |
| `image` | `Image()` | path-based (not decoded, not copied) for files on disk; bytes for in-memory sources |
| `captions` | `List(Value("string"))` | ground-truth captions, stripped, never empty |
| `split` | `Value("string")` | `train`, `validation`, `test`, ... (same as the dict key) |
| `generated_caption` | `Value("string")` | MLLM-generated caption (`caption_images`) for T2I SIDs; may be null |

Targets: T2I targets are images (`image_id`); I2T targets are captions, with id ``f"{image_id}#{j}"``.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import datasets
from datasets import Dataset, DatasetDict, Features, Image, List, Value

SOURCE_FEATURES = Features(
    {
        "image_id": Value("string"),
        "image": Image(),
        "captions": List(Value("string")),
        "split": Value("string"),
        "generated_caption": Value("string"),
    }
)
SOURCE_COLUMNS = tuple(SOURCE_FEATURES)

# Source split names -> normalised names (Karpathy uses "val" and "restval").
DEFAULT_SPLIT_MAP = {"val": "validation", "valid": "validation", "dev": "validation"}
_SPLIT_ORDER = ("train", "validation", "test")
_CAPTION_COLUMN_CANDIDATES = ("captions", "caption", "sentences", "text")
_METADATA_FILES = ("metadata.jsonl", "captions.jsonl")
_KARPATHY_ID_DEFAULT = "filename"


def caption_id(image_id: str, j: int) -> str:
    """The I2T target id of caption `j` of image `image_id`: ``f"{image_id}#{j}"``."""
    return f"{image_id}#{j}"


# --------------------------------------------------------------------------------------------------------------------
# public loader
# --------------------------------------------------------------------------------------------------------------------


def load_image_caption_source(
    source: str | os.PathLike | Dataset | DatasetDict,
    *,
    image_root: str | os.PathLike | None = None,
    image_column: str = "image",
    caption_column: str | Sequence[str] | None = None,
    image_id_column: str | None = None,
    split: str | None = None,
    split_column: str | None = None,
    split_map: Mapping[str, str] | None = None,
    restval_to_train: bool = True,
    generated_caption_column: str | None = "generated_caption",
    generated_captions: Mapping[str, str] | None = None,
    drop_empty: bool = False,
    check_images: bool | Literal["exists"] = True,
) -> DatasetDict:
    """Load an image-caption dataset and normalise it to one row per image (see the module docstring for columns).

    Sources:

    - a `datasets.Dataset` (one split, named by `split`) or `datasets.DatasetDict`, or the path of a folder written
      with `save_to_disk`. The image column may hold an `Image` feature (decoded or not) or file paths (relative
      paths are resolved against `image_root`). The caption column(s) may hold a string or a list of strings.
    - an image folder with a `metadata.jsonl` or `captions.jsonl` (imagefolder-style: one JSON object per line with
      `file_name` and `caption` / `captions` / `text`, optional `image_id`, `split`, `generated_caption`), either at
      the root or in one sub-folder per split (the sub-folder name is the split).
    - a Karpathy-style JSON file (`dataset_flickr30k.json`, `dataset_coco.json`):
      ``{"images": [{"filename", "filepath"?, "imgid", "split", "sentences": [{"raw": ...}]}]}``; images are looked up
      at `image_root/filepath/filename` (`image_root` defaults to the JSON's folder). The image id is the file name
      without extension unless `image_id_column` names another field (`"imgid"`, `"cocoid"`).

    Split names go through `split_map` (default: `val`/`valid`/`dev` -> `validation`) and, with `restval_to_train`,
    `restval` -> `train`.

    Args:
        source (`str`, `os.PathLike`, `datasets.Dataset` or `datasets.DatasetDict`):
            The dataset, or a path to a `save_to_disk` folder, an image folder, or a Karpathy JSON file.
        image_root (`str` or `os.PathLike`, *optional*):
            Base folder of relative image paths (Karpathy JSON, HF datasets holding paths, image folders whose
            metadata lives elsewhere).
        image_column (`str`, defaults to `"image"`): column of a HF dataset holding the image (or its path).
        caption_column (`str` or `list[str]`, *optional*):
            Column(s) / JSON key(s) holding captions; several columns are concatenated. Defaults to the first of
            `captions`, `caption`, `sentences`, `text` that exists.
        image_id_column (`str`, *optional*):
            Column / key holding a unique image id. Defaults to `image_id` when present, else the file name without
            extension (folders, Karpathy) or `f"{split}-{row}"` (HF datasets without paths).
        split (`str`, *optional*): split name of a single `datasets.Dataset` (defaults to `"train"`).
        split_column (`str`, *optional*):
            Column of a HF dataset holding each row's split (e.g. `nlphuji/flickr30k` keeps Karpathy splits in a
            column); rows are regrouped by it.
        split_map (`Mapping[str, str]`, *optional*): extra split renames, applied after the defaults.
        restval_to_train (`bool`, defaults to `True`): map Karpathy's `restval` split to `train`.
        generated_caption_column (`str`, *optional*, defaults to `"generated_caption"`):
            Column / key holding MLLM-generated captions, used when present.
        generated_captions (`Mapping[str, str]`, *optional*):
            `image_id -> generated caption` (e.g. from `caption_images`); overrides the column.
        drop_empty (`bool`, defaults to `False`):
            Drop empty / whitespace-only captions (and images left without any) with a warning instead of raising.
        check_images (`bool` or `"exists"`, defaults to `True`):
            `True`: decode every image once (PIL `verify()` and a full `load()`; `verify()` alone never reads JPEG
            data, so a truncated JPEG would pass), so that a missing, truncated or corrupt image fails here, naming
            it, before any embedding or captioning; ~2 ms per image, on up to 8 threads. `"exists"`: only check
            that path-based image files exist (a `stat`). `False`: no check.

    Returns:
        `datasets.DatasetDict`: one split per source split, in the order train, validation, test, then the others.

    Raises:
        `ValueError`: missing columns (naming the missing and the available ones), empty captions (naming the image),
            duplicate image ids, unknown source layout, an image that cannot be decoded (naming it and its file).
        `FileNotFoundError`: a missing image file (naming its path) or source path.
    """
    if check_images not in (True, False, "exists"):
        raise ValueError(f"check_images must be True, False or 'exists', got {check_images!r}.")
    opts = _Options(
        image_root=Path(image_root) if image_root is not None else None,
        image_column=image_column,
        caption_columns=[caption_column] if isinstance(caption_column, str) else caption_column,
        image_id_column=image_id_column,
        split_map=_split_map(split_map, restval_to_train),
        generated_caption_column=generated_caption_column,
        drop_empty=drop_empty,
        check_images=check_images,
        dropped=Counter(),
    )
    if isinstance(source, (Dataset, DatasetDict)):
        out = _from_hf(source, opts, split=split, split_column=split_column)
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"Image-caption source not found: {str(path)!r}.")
        if path.is_file():
            if path.suffix != ".json":
                raise ValueError(
                    f"Unsupported source file {str(path)!r}: expected a Karpathy-style JSON "
                    "(dataset_flickr30k.json / dataset_coco.json), an image folder, or a save_to_disk folder."
                )
            out = _from_karpathy(path, opts)
        elif (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            out = _from_hf(datasets.load_from_disk(str(path)), opts, split=split, split_column=split_column)
        else:
            out = _from_folder(path, opts)
    if generated_captions is not None:
        out = _attach_generated(out, generated_captions)
    _check_unique_ids(out)
    if opts.dropped:
        warnings.warn(
            f"drop_empty=True: dropped {opts.dropped['captions']} empty caption(s) and {opts.dropped['images']} "
            "image(s) left without captions.",
            UserWarning,
            stacklevel=2,
        )
    return out


# --------------------------------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------------------------------


def t2i_targets(
    rows: Dataset | DatasetDict | Iterable[Mapping[str, Any]],
    text: Literal["generated", "first_caption"] = "generated",
    splits: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """The T2I targets (images) and the one text per image that their SIDs are built from.

    DESIGN: image SIDs come from MLLM-generated captions, so that the ground-truth captions, which are the test
    queries, never shape the identifiers.

    Args:
        rows (`datasets.Dataset`, `datasets.DatasetDict` or iterable of dicts): normalised source rows.
        text (`str`, defaults to `"generated"`):
            `"generated"`: the `generated_caption` of every image (an error names the images without one);
            `"first_caption"`: the first ground-truth caption. It leaks the captions of test queries into the
            identifiers, so it warns unless `splits` restricts the targets to `("train",)`.
        splits (`list[str]`, *optional*): only these splits of a `DatasetDict` (default: all).

    Returns:
        `tuple[list[str], list[str]]`: `(image_ids, texts)`, aligned, in split then row order.
    """
    if text not in ("generated", "first_caption"):
        raise ValueError(f"text must be 'generated' or 'first_caption', got {text!r}.")
    cols = _collect(rows, ["image_id", "captions", "generated_caption", "split"], splits)
    ids = [str(i) for i in cols["image_id"]]
    if text == "generated":
        missing = [i for i, g in zip(ids, cols["generated_caption"]) if g is None or not str(g).strip()]
        if missing:
            raise ValueError(
                f"{len(missing)} image(s) have no generated caption (first: {missing[:5]}). T2I SIDs are built from "
                "MLLM-generated captions: run `semcore_hf.identifiers.caption_images` and pass its output as "
                "`generated_captions=` to `load_image_caption_source`, or use text='first_caption' (leaks test "
                "queries unless splits=('train',))."
            )
        return ids, [str(g).strip() for g in cols["generated_caption"]]
    leaking = sorted({s for s in cols["split"] if s != "train"})
    if leaking:
        warnings.warn(
            f"t2i_targets(text='first_caption') builds image SIDs from ground-truth captions of split(s) {leaking}: "
            "the captions of test queries leak into the identifiers. Use generated captions (text='generated') or "
            "restrict to splits=('train',).",
            UserWarning,
            stacklevel=2,
        )
    return ids, [caps[0] for caps in cols["captions"]]


def i2t_targets(
    rows: Dataset | DatasetDict | Iterable[Mapping[str, Any]], splits: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """The I2T targets: every caption of every image, with id ``f"{image_id}#{j}"`` and the caption as its text.

    Args:
        rows (`datasets.Dataset`, `datasets.DatasetDict` or iterable of dicts): normalised source rows.
        splits (`list[str]`, *optional*): only these splits of a `DatasetDict` (default: all).

    Returns:
        `tuple[list[str], list[str]]`: `(caption_ids, captions)`, aligned, in split, row, then caption order.
    """
    cols = _collect(rows, ["image_id", "captions"], splits)
    ids, texts = [], []
    for image_id, caps in zip(cols["image_id"], cols["captions"]):
        for j, cap in enumerate(caps):
            ids.append(caption_id(str(image_id), j))
            texts.append(cap)
    return ids, texts


# --------------------------------------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------------------------------------


class _Options:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _split_map(extra: Mapping[str, str] | None, restval_to_train: bool) -> dict[str, str]:
    mapping = dict(DEFAULT_SPLIT_MAP)
    if restval_to_train:
        mapping["restval"] = "train"
    mapping.update(extra or {})
    return mapping


def _order_splits(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    known = [s for s in _SPLIT_ORDER if s in names]
    return known + sorted(s for s in names if s not in _SPLIT_ORDER)


def _collect(rows, columns: list[str], splits: Sequence[str] | None) -> dict[str, list]:
    """Read a few columns without touching (decoding) the images."""
    out: dict[str, list] = {c: [] for c in columns}
    if isinstance(rows, DatasetDict):
        unknown = [s for s in (splits or []) if s not in rows]
        if unknown:
            raise ValueError(f"Unknown split(s) {unknown}; available: {list(rows)}.")
        parts = [rows[s] for s in (splits or list(rows))]
    elif isinstance(rows, Dataset):
        parts = [rows]
    else:
        records = [{c: r.get(c) for c in columns} for r in rows]
        parts = [Dataset.from_list(records)] if records else []
    for ds in parts:
        missing = [c for c in columns if c not in ds.column_names]
        if missing:
            raise ValueError(
                f"Rows lack column(s) {missing} (available: {ds.column_names}); normalise the source with "
                "load_image_caption_source first."
            )
        data = ds.select_columns(columns).to_dict()
        for c in columns:
            out[c].extend(data[c])
    if isinstance(rows, Dataset) and splits is not None:
        keep = [i for i, s in enumerate(out.get("split", [])) if s in splits]
        out = {c: [v[i] for i in keep] for c, v in out.items()}
    return out


def _as_captions(value: Any, where: str) -> list[str]:
    """A caption cell (str, list of str, Karpathy sentence dicts) -> list of raw strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        for key in ("raw", "caption", "text"):
            if key in value:
                return _as_captions(value[key], where)
        raise ValueError(f"{where}: a caption dict needs a 'raw', 'caption' or 'text' key, got keys {list(value)}.")
    if isinstance(value, Iterable):
        out: list[str] = []
        for v in value:
            out.extend(_as_captions(v, where))
        return out
    raise ValueError(f"{where}: captions must be strings or lists of strings, got {type(value).__name__}.")


def _clean_captions(raw: list[str], image_id: str, split: str, opts: _Options) -> list[str] | None:
    """Strip captions; empty ones raise (naming the image) or, with drop_empty, are dropped. None = drop image."""
    caps = []
    for j, cap in enumerate(raw):
        text = str(cap).strip()
        if text:
            caps.append(text)
        elif opts.drop_empty:
            opts.dropped["captions"] += 1
        else:
            raise ValueError(
                f"Image {image_id!r} (split {split!r}) has an empty or whitespace-only caption at index {j}. "
                "Fix the source, or pass drop_empty=True to drop empty captions (and images left without captions)."
            )
    if not caps:
        if not opts.drop_empty:
            raise ValueError(
                f"Image {image_id!r} (split {split!r}) has no caption. Fix the source, or pass drop_empty=True to "
                "drop images without captions."
            )
        opts.dropped["images"] += 1
        return None
    return caps


def _resolve_path(path: str, base: Path | None) -> str:
    p = Path(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


def _check_file(path: str, image_id: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file of image {image_id!r} not found: {path!r}.")


_CHECK_THREADS = min(8, os.cpu_count() or 1)


def verify_image(image: str | Mapping[str, Any], image_id: str) -> None:
    """Decode one image completely, so that a missing, truncated or corrupt file fails here, naming the image.

    PIL's `verify()` checks a file's structure (PNG chunks and CRCs) but never decodes JPEG data, so a truncated
    JPEG passes it; a `load()` (after `draft`, which lets libjpeg skip most of the inverse DCT but still reads every
    coefficient) decodes the pixels.

    Args:
        image (`str` or `dict`): a path, or a `datasets.Image(decode=False)` value ``{"path", "bytes"}``.
        image_id (`str`): named in the error.

    Raises:
        `FileNotFoundError`: a path-based image whose file does not exist.
        `ValueError`: an image PIL cannot open or decode.
    """
    from PIL import Image as PILImage

    path, data = (image, None) if isinstance(image, str) else (image.get("path"), image.get("bytes"))
    if data is None and (not path or not os.path.isfile(path)):
        raise FileNotFoundError(f"Image file of image {image_id!r} not found: {path!r}.")
    try:
        for full in (False, True):  # a verified image cannot be loaded: open it twice
            with PILImage.open(io.BytesIO(data) if data is not None else path) as im:
                if full:
                    im.draft(None, (1, 1))
                    im.load()
                else:
                    im.verify()
    except Exception as e:  # PIL raises several types (UnidentifiedImageError, SyntaxError, OSError)
        where = repr(path) if data is None else "its embedded bytes"
        raise ValueError(
            f"Image {image_id!r} cannot be read from {where}: {type(e).__name__}: {e}. Replace the file (e.g. "
            "download it again) or drop the image from the source."
        ) from e


def _image_error(item: tuple[Any, str]) -> Exception | None:
    try:
        verify_image(*item)
    except (FileNotFoundError, ValueError) as e:
        return e
    return None


def _check_images(items: list[tuple[Any, str]], mode: bool | str) -> None:
    """Check `(image, image_id)` pairs per `check_images`; raises the error of the first bad one in source order."""
    if not mode or not items:
        return
    if mode == "exists":
        for image, image_id in items:
            path = image if isinstance(image, str) else image.get("path")
            if isinstance(image, str) or image.get("bytes") is None:
                _check_file(path, image_id)
        return
    # PIL releases the GIL while decoding, so threads overlap the decoding of many images.
    with ThreadPoolExecutor(_CHECK_THREADS) as pool:
        errors = list(pool.map(_image_error, items))
    for e in errors:
        if e is not None:
            raise e


def _pick_caption_columns(available: Sequence[str], opts: _Options, where: str) -> list[str]:
    if opts.caption_columns:
        missing = [c for c in opts.caption_columns if c not in available]
        if missing:
            raise ValueError(f"{where}: caption column(s) {missing} not found; available: {list(available)}.")
        return list(opts.caption_columns)
    for c in _CAPTION_COLUMN_CANDIDATES:
        if c in available:
            return [c]
    raise ValueError(
        f"{where}: no caption column found (looked for {list(_CAPTION_COLUMN_CANDIDATES)}); available: "
        f"{list(available)}. Pass caption_column=..."
    )


def _records_to_split(records: list[dict], split: str) -> Dataset:
    return Dataset.from_dict(
        {c: [r[c] for r in records] for c in SOURCE_COLUMNS}, features=SOURCE_FEATURES, split=datasets.Split(split)
    )


def _group(records: list[dict]) -> DatasetDict:
    by_split: dict[str, list[dict]] = {}
    for r in records:
        by_split.setdefault(r["split"], []).append(r)
    return DatasetDict({s: _records_to_split(by_split[s], s) for s in _order_splits(by_split)})


# -- HF datasets ------------------------------------------------------------------------------------------------------


def _from_hf(
    source: Dataset | DatasetDict, opts: _Options, split: str | None, split_column: str | None
) -> DatasetDict:
    parts = source if isinstance(source, DatasetDict) else DatasetDict({split or "train": source})
    normalised: dict[str, list[Dataset]] = {}
    for name, ds in parts.items():
        where = f"Split {name!r}"
        available = ds.column_names
        needed = [opts.image_column] + ([split_column] if split_column else [])
        if opts.image_id_column:
            needed.append(opts.image_id_column)
        missing = [c for c in needed if c not in available]
        if missing:
            raise ValueError(f"{where}: column(s) {missing} not found; available: {available}.")
        cap_cols = _pick_caption_columns(available, opts, where)
        id_col = opts.image_id_column or ("image_id" if "image_id" in available else None)
        gen_col = opts.generated_caption_column if opts.generated_caption_column in available else None
        feat = ds.features[opts.image_column]
        if isinstance(feat, Image):
            ds = ds.cast_column(opts.image_column, Image(decode=False))  # never decode while normalising
        elif not (isinstance(feat, Value) and feat.dtype in ("string", "large_string")):
            raise ValueError(f"{where}: column {opts.image_column!r} must be an Image feature or paths, got {feat}.")
        keep = [opts.image_column, *cap_cols] + [c for c in (id_col, gen_col, split_column) if c]
        ds = ds.select_columns(list(dict.fromkeys(keep)))
        fn_kwargs = dict(
            opts=opts, base=name, cap_cols=cap_cols, id_col=id_col, gen_col=gen_col, split_column=split_column
        )
        ds = ds.map(
            _normalise_batch,
            batched=True,
            with_indices=True,
            fn_kwargs=fn_kwargs,
            remove_columns=ds.column_names,
            features=Features({**SOURCE_FEATURES, "image": Image(decode=False), "_keep": Value("bool")}),
            desc=f"Normalising {name}",
        )
        ds = ds.filter(lambda keep: keep, input_columns="_keep").remove_columns("_keep")
        ds = ds.cast_column("image", Image())
        if split_column:
            groups: dict[str, list[int]] = {}
            for i, s in enumerate(ds["split"]):
                groups.setdefault(s, []).append(i)
            for s, idx in groups.items():
                normalised.setdefault(s, []).append(ds.select(idx))
        else:
            normalised.setdefault(opts.split_map.get(name, name), []).append(ds)
    out = {}
    for s in _order_splits(normalised):
        pieces = normalised[s]
        out[s] = pieces[0] if len(pieces) == 1 else datasets.concatenate_datasets(pieces)
    return DatasetDict(out)


def _normalise_batch(batch, indices, opts, base, cap_cols, id_col, gen_col, split_column):
    out = {c: [] for c in SOURCE_COLUMNS} | {"_keep": []}
    to_check = []
    for k, row_idx in enumerate(indices):
        split = str(batch[split_column][k]) if split_column else base
        split = opts.split_map.get(split, split)
        image_id = str(batch[id_col][k]) if id_col else f"{split}-{row_idx}"
        raw = []
        for c in cap_cols:
            raw.extend(_as_captions(batch[c][k], f"Image {image_id!r}"))
        caps = _clean_captions(raw, image_id, split, opts)
        image = batch[opts.image_column][k]
        if isinstance(image, str):
            image = {"path": image, "bytes": None}
        if image is None:
            raise ValueError(f"Image {image_id!r} (split {split!r}) has no image.")
        if image.get("bytes") is None:
            if not image.get("path"):
                raise ValueError(f"Image {image_id!r} (split {split!r}) has neither bytes nor a path.")
            image = {"path": _resolve_path(image["path"], opts.image_root), "bytes": None}
        if caps is not None:
            to_check.append((image, image_id))
        gen = batch[gen_col][k] if gen_col else None
        out["image_id"].append(image_id)
        out["image"].append(image)
        out["captions"].append(caps or [])
        out["split"].append(split)
        out["generated_caption"].append(str(gen).strip() if gen is not None and str(gen).strip() else None)
        out["_keep"].append(caps is not None)
    _check_images(to_check, opts.check_images)
    return out


# -- image folder -----------------------------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: invalid JSON ({e}).") from e
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object per line, got {type(rec).__name__}.")
            records.append(rec)
    return records


def _find_metadata(folder: Path) -> Path | None:
    for name in _METADATA_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _from_folder(root: Path, opts: _Options) -> DatasetDict:
    top = _find_metadata(root)
    if top is not None:
        files = [(top, None)]
    else:
        files = [(m, sub.name) for sub in sorted(root.iterdir()) if sub.is_dir() and (m := _find_metadata(sub))]
    if not files:
        raise ValueError(
            f"{str(root)!r} is not an image-caption folder: expected {' or '.join(_METADATA_FILES)} at its root or in "
            'one sub-folder per split (lines like {"file_name": "0001.jpg", "captions": ["..."]}), or a '
            "save_to_disk folder."
        )
    records = []
    for meta, sub_split in files:
        base = opts.image_root or meta.parent
        for n, rec in enumerate(_read_jsonl(meta), 1):
            where = f"{meta}:{n}"
            if "file_name" not in rec:
                raise ValueError(f"{where}: missing key 'file_name'; available: {sorted(rec)}.")
            cap_keys = _pick_caption_columns(list(rec), opts, where)
            if opts.image_id_column and opts.image_id_column not in rec:
                raise ValueError(f"{where}: missing key {opts.image_id_column!r}; available: {sorted(rec)}.")
            id_key = opts.image_id_column or ("image_id" if "image_id" in rec else None)
            image_id = str(rec[id_key]) if id_key else Path(rec["file_name"]).with_suffix("").as_posix()
            split = str(rec.get("split") or sub_split or "train")
            records.append(_record(rec, image_id, opts.split_map.get(split, split), cap_keys, base, opts, where))
    records = [r for r in records if r is not None]
    _check_images([(r["image"], r["image_id"]) for r in records], opts.check_images)
    return _group(records)


def _record(rec, image_id, split, cap_keys, base, opts, where) -> dict | None:
    raw = []
    for k in cap_keys:
        raw.extend(_as_captions(rec[k], where))
    caps = _clean_captions(raw, image_id, split, opts)
    if caps is None:
        return None
    path = _resolve_path(rec["file_name"], base)
    gen = rec.get(opts.generated_caption_column) if opts.generated_caption_column else None
    gen = str(gen).strip() if gen is not None and str(gen).strip() else None
    return {"image_id": image_id, "image": path, "captions": caps, "split": split, "generated_caption": gen}


# -- Karpathy JSON ----------------------------------------------------------------------------------------------------


def _from_karpathy(path: Path, opts: _Options) -> DatasetDict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is not valid JSON ({e}).") from e
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"{str(path)!r} is not a Karpathy-style JSON: expected a top-level 'images' list; found {keys}."
        )
    base = opts.image_root or path.parent
    records = []
    for n, img in enumerate(data["images"]):
        where = f"{path.name}: images[{n}]"
        missing = [k for k in ("filename", "split") if k not in img]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}; available: {sorted(img)}.")
        cap_keys = _pick_caption_columns(list(img), opts, where) if opts.caption_columns else ["sentences"]
        if cap_keys == ["sentences"] and "sentences" not in img:
            raise ValueError(f"{where}: missing key 'sentences'; available: {sorted(img)}.")
        id_key = opts.image_id_column or _KARPATHY_ID_DEFAULT
        if id_key not in img:
            raise ValueError(f"{where}: missing image id key {id_key!r}; available: {sorted(img)}.")
        image_id = Path(img["filename"]).stem if id_key == "filename" else str(img[id_key])
        file_name = os.path.join(img["filepath"], img["filename"]) if img.get("filepath") else img["filename"]
        split = opts.split_map.get(str(img["split"]), str(img["split"]))
        records.append(_record({**img, "file_name": file_name}, image_id, split, cap_keys, base, opts, where))
    records = [r for r in records if r is not None]
    _check_images([(r["image"], r["image_id"]) for r in records], opts.check_images)
    return _group(records)


# -- generated captions, uniqueness ---------------------------------------------------------------------------------


def _attach_generated(dd: DatasetDict, captions: Mapping[str, str]) -> DatasetDict:
    captions = {str(k): v for k, v in captions.items()}

    def attach(image_ids, olds):
        out = []
        for image_id, old in zip(image_ids, olds):
            new = captions.get(image_id, old)
            out.append(str(new).strip() if new is not None and str(new).strip() else None)
        return {"generated_caption": out}

    return DatasetDict(
        {
            s: ds.map(attach, batched=True, input_columns=["image_id", "generated_caption"], desc="Generated captions")
            for s, ds in dd.items()
        }
    )


def _check_unique_ids(dd: DatasetDict) -> None:
    counts = Counter(i for ds in dd.values() for i in ds.select_columns(["image_id"]).to_dict()["image_id"])
    dups = [i for i, c in counts.items() if c > 1]
    if dups:
        raise ValueError(
            f"{len(dups)} duplicate image id(s) (first: {dups[:5]}); image ids must be unique across all splits. "
            "Pass image_id_column=... naming a unique column/key (Karpathy: 'imgid' or 'cocoid'), or fix the source "
            "(image folders: add a unique 'image_id' to each metadata line)."
        )
