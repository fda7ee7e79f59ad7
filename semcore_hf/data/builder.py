"""`SIDDatasetBuilder` and `build_sid_dataset`: attach SIDs to an image-caption source and emit TRL splits.

Each task is one builder config, emitted as a `datasets.DatasetDict` of the source splits, in TRL's conversational
*prompt-completion* format (only the completion, i.e. the SID, is supervised):

| task | prompt (`prompts.*`) | completion | `images` | rows per split |
|---|---|---|---|---|
| `t2i` | `t2i_prompt(caption)` | image SID | no | one per caption |
| `i2t` | `i2t_prompt()` | caption SID | `[image]` | one per caption |
| `memorize_t2i` | `memorize_image_prompt()`; text_only: `memorize_text_prompt(gen)` | image SID | VLM | per image |
| `memorize_i2t` | `memorize_caption_prompt(caption)` | caption SID | no | one per caption |
| `verify_t2i` | `verify_t2i_prompt(caption)`; text_only: `verify_t2i_text_prompt(caption, gen)` | yes / no | VLM | * |
| `verify_i2t` | `verify_i2t_prompt(caption)`; text_only: `verify_t2i_text_prompt(caption, gen)` | yes / no | VLM | * |
| `caption` | `caption_prompt()` | the caption | `[image]` | one per caption (no index needed) |
| `pseudo_t2i` | `t2i_prompt(pseudo-query)` | image SID | no | one per pseudo-query of each image |

`gen` is the generated caption of the candidate (verify_t2i) or query (verify_i2t) image, standing in for the image
with text-only models; `*` = (1 + num_negatives) per caption.

Every row also has `target_id` (the image id, or caption id ``f"{image_id}#{j}"``; for verification the candidate),
`sid` (the target's plain SID string), `query_id` (the caption id for text queries, the image id for image queries)
and, for verification, `label` (1 = yes, 0 = no). TRL ignores these extra columns: text datasets are tokenised and
then reduced to the model inputs, vision datasets are reduced to `prompt` / `completion` / `images` by the trainer's
`remove_unused_columns` (checked with trl 1.16 in `tests/data`).

Memorisation covers every target of every split, test images included (GRACE-style): train on all splits of the
`memorize_*` configs (`load_dataset(dir, name, split="train+validation+test")`). So do `pseudo_t2i`'s rows: its
queries are written from each image's own text (`generate_pseudo_queries`, doc2query / DSI-QG style), never from a
test query, so they teach the model the SIDs of the test images from query-like text without leaking.

Verification negatives are drawn (seeded) from the targets of the same split that share the positive's K-Means
cluster (`index.target_cluster`), never the positive itself (for I2T, never any caption of the query image); when the
cluster has too few other members they come from the other clusters of the split.
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from datasets.exceptions import DatasetGenerationError
from datasets.fingerprint import Hasher

from semcore_hf.data import prompts
from semcore_hf.data.sources import SOURCE_FEATURES, caption_id, load_image_caption_source, verify_image
from semcore_hf.identifiers.sid_format import sid_to_completion

T2I_TASKS = ("t2i", "memorize_t2i", "verify_t2i")
I2T_TASKS = ("i2t", "memorize_i2t", "verify_i2t")
VERIFY_TASKS = ("verify_t2i", "verify_i2t")
# Every task that needs the image index: the default T2I tasks and `pseudo_t2i` (built only when asked for).
T2I_INDEX_TASKS = (*T2I_TASKS, "pseudo_t2i")
# Rows built from the targets alone (no query of the split): trained on every split, test included.
EVERY_SPLIT_TASKS = ("memorize_t2i", "memorize_i2t", "pseudo_t2i")
PROMPT_CONTENT_FORMATS = ("auto", "parts", "string")

# Bump when the emitted rows change for the same inputs, so cached builds are not reused.
_FORMAT_REVISION = 1

_MESSAGES_PARTS = List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})})
_MESSAGES_STRING = List({"role": Value("string"), "content": Value("string")})


def task_has_images(task: str, text_only: bool = False) -> bool:
    """Whether rows of `task` carry an `images` column (i.e. need a VLM)."""
    if task in ("i2t", "caption"):
        return True
    return task in ("memorize_t2i", "verify_t2i", "verify_i2t") and not text_only


def task_features(task: str, text_only: bool = False, prompt_content: str = "auto") -> Features:
    """The `datasets.Features` of the rows of `task` (see the module docstring).

    Args:
        task (`str`): one of `prompts.TASKS`.
        text_only (`bool`, defaults to `False`): text-only variant (no images).
        prompt_content (`str`, defaults to `"auto"`): see `build_sid_dataset`.
    """
    images = task_has_images(task, text_only)
    string = not images and _resolve_content(prompt_content, text_only) == "string"
    feats: dict[str, Any] = {
        "prompt": _MESSAGES_STRING if string else _MESSAGES_PARTS,
        "completion": _MESSAGES_STRING,
    }
    if images:
        feats["images"] = List(Image())
    feats.update({"target_id": Value("string"), "sid": Value("string"), "query_id": Value("string")})
    if task in VERIFY_TASKS:
        feats["label"] = Value("int64")
    return Features(feats)


def _resolve_content(prompt_content: str, text_only: bool) -> str:
    # Text-only models' chat templates usually concatenate `content` as a string; VLM templates iterate over parts.
    if prompt_content == "auto":
        return "string" if text_only else "parts"
    return prompt_content


# --------------------------------------------------------------------------------------------------------------------
# config and builder
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class SIDDatasetConfig(datasets.BuilderConfig):
    """One task of the SID training data. `name` is the task (one of `prompts.TASKS`).

    Args:
        source (`str`, `datasets.Dataset` or `datasets.DatasetDict`):
            Image-caption source; anything `load_image_caption_source` accepts (normalised once, here).
        t2i_index (`SIDIndex` or `str`, *optional*): index of the images (path: loaded with `from_pretrained`).
        i2t_index (`SIDIndex` or `str`, *optional*): index of the captions (ids ``f"{image_id}#{j}"``).
        text_only (`bool`, defaults to `False`): no images; image candidates / queries are given by their generated
            captions (for causal LMs). `i2t` has no text-only variant.
        num_negatives (`int`, defaults to 1): negatives per positive for the verification tasks.
        seed (`int`, defaults to 0): seed of the negative sampling.
        image_root (`str`, *optional*): base folder of relative image paths of the source.
        source_kwargs (`dict`, *optional*): extra keyword arguments of `load_image_caption_source`.
        prompt_content (`str`, defaults to `"auto"`): `"parts"`, `"string"` or `"auto"`; see `build_sid_dataset`.
        check_images (`bool`, defaults to `True`): decode each image once before emitting it.
        pseudo_queries (`dict[str, list[str]]`, *optional*): `pseudo_t2i` only: image id -> its pseudo-queries.
    """

    source: Any = None
    t2i_index: Any = None
    i2t_index: Any = None
    text_only: bool = False
    num_negatives: int = 1
    seed: int = 0
    image_root: str | None = None
    source_kwargs: dict | None = None
    prompt_content: str = "auto"
    check_images: bool = True
    pseudo_queries: dict | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.name not in prompts.TASKS:
            raise ValueError(f"Unknown SID dataset task {self.name!r}; choose among {list(prompts.TASKS)}.")
        # Every argument is checked before the source is loaded (and its images decoded).
        _check_arguments(
            [self.name],
            self.t2i_index is not None,
            self.i2t_index is not None,
            self.text_only,
            self.num_negatives,
            self.seed,
            self.prompt_content,
            self.check_images,
            self.pseudo_queries,
        )
        if self.source is None:
            raise ValueError("SIDDatasetConfig needs a `source` (dataset, image folder or Karpathy JSON).")
        self.source = _normalised_source(self.source, self.image_root, self.source_kwargs)
        self.t2i_index = _load_index(self.t2i_index, "t2i_index")
        self.i2t_index = _load_index(self.i2t_index, "i2t_index")

    def create_config_id(self, config_kwargs: dict, custom_features: Features | None = None) -> str:
        # The default hashes every kwarg (datasets, indexes) by pickling them; a content fingerprint is cheaper and
        # changes exactly when the emitted rows would.
        index = self.t2i_index if self.name in T2I_INDEX_TASKS else self.i2t_index
        parts = (
            _FORMAT_REVISION,
            prompts.PROMPT_FORMAT,  # new instruction texts are new rows
            self.name,
            self.text_only,
            self.num_negatives,
            self.seed,
            self.prompt_content,
            [(k, ds._fingerprint) for k, ds in self.source.items()],
            _index_fingerprint(index),
            sorted((str(k), list(v)) for k, v in self.pseudo_queries.items()) if self.name == "pseudo_t2i" else None,
            custom_features,
        )
        return f"{self.name}-{Hasher.hash(parts)}"


class SIDDatasetBuilder(datasets.GeneratorBasedBuilder):
    """A `datasets` builder of SemCORE training data, used from Python (loading scripts no longer exist).

    Example:

    ```python
    >>> builder = SIDDatasetBuilder(config_name="t2i", source="dataset_flickr30k.json", t2i_index=t2i_index,
    ...                             image_root="flickr30k-images", cache_dir="cache")
    >>> builder.download_and_prepare()
    >>> ds = builder.as_dataset()  # DatasetDict: train / validation / test
    ```
    """

    BUILDER_CONFIG_CLASS = SIDDatasetConfig
    VERSION = datasets.Version("1.0.0")
    # Rows may hold images; small writer batches keep memory (and Parquet row groups) small.
    DEFAULT_WRITER_BATCH_SIZE = 100

    def _info(self) -> datasets.DatasetInfo:
        cfg = self.config
        return datasets.DatasetInfo(
            description=f"SemCORE SID training data, task {cfg.name!r} (TRL conversational prompt-completion).",
            features=task_features(cfg.name, cfg.text_only, cfg.prompt_content),
            citation="Li et al., 2025, SemCORE, arXiv:2504.13172",
        )

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split}) for split in self.config.source]

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict]]:
        cfg = self.config
        rows = _TaskRows(
            rows=cfg.source[split],
            split=split,
            t2i=_IndexView(cfg.t2i_index, "t2i_index") if cfg.t2i_index is not None else None,
            i2t=_IndexView(cfg.i2t_index, "i2t_index") if cfg.i2t_index is not None else None,
            text_only=cfg.text_only,
            string_prompts=_resolve_content(cfg.prompt_content, cfg.text_only) == "string",
            num_negatives=cfg.num_negatives,
            seed=cfg.seed,
            check_images=cfg.check_images,
            pseudo_queries=cfg.pseudo_queries,
        )
        yield from enumerate(getattr(rows, cfg.name)())


# --------------------------------------------------------------------------------------------------------------------
# public function
# --------------------------------------------------------------------------------------------------------------------


def build_sid_dataset(
    source: str | os.PathLike | Dataset | DatasetDict,
    *,
    t2i_index: Any = None,
    i2t_index: Any = None,
    tasks: Sequence[str] | None = None,
    text_only: bool = False,
    num_negatives: int = 1,
    seed: int = 0,
    image_root: str | os.PathLike | None = None,
    prompt_content: str = "auto",
    source_kwargs: Mapping[str, Any] | None = None,
    check_images: bool = True,
    cache_dir: str | os.PathLike | None = None,
    pseudo_queries: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, DatasetDict]:
    """Build the TRL training data of every requested task (see the module docstring for the rows).

    Args:
        source (`str`, `os.PathLike`, `datasets.Dataset` or `datasets.DatasetDict`):
            Image-caption source (anything `load_image_caption_source` accepts, normalised or not).
        t2i_index (`SIDIndex` or `str`, *optional*): the image index (T2I); needed by the `*t2i` tasks.
        i2t_index (`SIDIndex` or `str`, *optional*): the caption index (I2T); needed by the `*i2t` tasks.
        tasks (`list[str]`, *optional*):
            Tasks to emit. Defaults to every task whose index is given (`i2t` and `verify_i2t` left out with
            `text_only=True`).
        text_only (`bool`, defaults to `False`):
            Emit no images, for causal LMs: `memorize_t2i` maps the image's generated caption to its SID,
            `verify_t2i` / `verify_i2t` describe the image by its generated caption.
        num_negatives (`int`, defaults to 1): negatives per positive in the verification tasks.
        seed (`int`, defaults to 0): seed of the negative sampling (the output is deterministic given it).
        image_root (`str` or `os.PathLike`, *optional*): base folder of relative image paths.
        prompt_content (`str`, defaults to `"auto"`):
            Shape of the message contents of image-free prompts: `"parts"` (``[{"type": "text", "text": ...}]``, as
            `prompts` builds them; VLM chat templates need it), `"string"` (plain strings; most text-only LM chat
            templates need it) or `"auto"` (`"string"` if `text_only` else `"parts"`). Image prompts are always parts.
        source_kwargs (`Mapping`, *optional*): extra keyword arguments of `load_image_caption_source`.
        check_images (`bool`, defaults to `True`):
            decode each image once before emitting it (a truncated or corrupt file fails, naming the image).
        cache_dir (`str` or `os.PathLike`, *optional*): `datasets` cache (default: `HF_DATASETS_CACHE`).
        pseudo_queries (`Mapping[str, Sequence[str]]`, *optional*):
            Image id -> its pseudo-queries (`generate_pseudo_queries`); needed by the `pseudo_t2i` task, for every
            image of the source (an image may have none).

    Returns:
        `dict[str, datasets.DatasetDict]`: task -> splits of the source.
    """
    # Arguments first: a bad task or count must fail before the source is loaded and its images decoded.
    if tasks is None:
        tasks = [*(T2I_TASKS if t2i_index is not None else ()), *(I2T_TASKS if i2t_index is not None else ())]
        if text_only:
            tasks = [t for t in tasks if t not in ("i2t", "verify_i2t")]
        if not tasks:
            raise ValueError("Pass t2i_index and/or i2t_index (or tasks=...): there is nothing to build.")
    _check_arguments(
        tasks,
        t2i_index is not None,
        i2t_index is not None,
        text_only,
        num_negatives,
        seed,
        prompt_content,
        check_images,
        pseudo_queries,
    )
    if pseudo_queries is not None:
        pseudo_queries = {str(k): [str(q) for q in v] for k, v in pseudo_queries.items()}
    rows = _normalised_source(source, image_root, source_kwargs)
    t2i_index = _load_index(t2i_index, "t2i_index")
    i2t_index = _load_index(i2t_index, "i2t_index")
    out = {}
    for task in dict.fromkeys(tasks):
        builder = SIDDatasetBuilder(
            cache_dir=str(cache_dir) if cache_dir is not None else None,
            config_name=task,
            source=rows,
            t2i_index=t2i_index,
            i2t_index=i2t_index,
            text_only=text_only,
            num_negatives=num_negatives,
            seed=seed,
            prompt_content=prompt_content,
            check_images=check_images,
            pseudo_queries=pseudo_queries,
        )
        try:
            builder.download_and_prepare()
        except DatasetGenerationError as e:
            # Surface our own input errors (they name the culprit) instead of the generic wrapper.
            if isinstance(e.__cause__, (ValueError, FileNotFoundError)):
                raise e.__cause__ from None
            raise
        out[task] = builder.as_dataset()
    return out


# --------------------------------------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------------------------------------


def _check_arguments(
    tasks, has_t2i: bool, has_i2t: bool, text_only, num_negatives, seed, prompt_content, check_images, pseudo_queries
) -> None:
    """Validate the task list against the indexes given, and every option, without touching the data."""
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise TypeError(f"tasks must be a list of task names (e.g. ['t2i']), got {tasks!r}.")
    if len(tasks) == 0:
        raise ValueError(f"tasks is empty; choose among {list(prompts.TASKS)}.")
    unknown = [t for t in tasks if t not in prompts.TASKS]
    if unknown:
        raise ValueError(f"Unknown task(s) {unknown}; choose among {list(prompts.TASKS)}.")
    for task in tasks:
        if task == "caption":  # image -> its caption: no identifiers involved
            continue
        needed, present = ("t2i_index", has_t2i) if task in T2I_INDEX_TASKS else ("i2t_index", has_i2t)
        if not present:
            raise ValueError(f"Task {task!r} needs `{needed}` (a SIDIndex or its directory).")
    if not isinstance(text_only, bool):
        raise TypeError(f"text_only must be True or False, got {text_only!r}.")
    for task in ("i2t", "caption"):
        if text_only and task in tasks:
            raise ValueError(f"Task {task!r} shows the image; it has no text_only variant.")
    if not isinstance(num_negatives, int) or isinstance(num_negatives, bool) or num_negatives < 1:
        raise ValueError(f"num_negatives must be a positive integer, got {num_negatives!r}.")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if prompt_content not in PROMPT_CONTENT_FORMATS:
        raise ValueError(f"prompt_content must be one of {PROMPT_CONTENT_FORMATS}, got {prompt_content!r}.")
    if check_images not in (True, False):
        raise ValueError(f"check_images must be True or False, got {check_images!r}.")
    if "pseudo_t2i" in tasks:
        if pseudo_queries is None:
            raise ValueError(
                "Task 'pseudo_t2i' needs `pseudo_queries` ({image id: [queries]}); write them with "
                "`semcore_hf.data.generate_pseudo_queries` (or `semcore-hf build-sids --pseudo_queries FILE`)."
            )
        if not isinstance(pseudo_queries, Mapping) or any(
            isinstance(v, str) or not isinstance(v, Sequence) for v in pseudo_queries.values()
        ):
            raise TypeError("pseudo_queries must map each image id to a list of query strings.")


def _normalised_source(source, image_root, source_kwargs) -> DatasetDict:
    if isinstance(source, DatasetDict) and all(ds.features == SOURCE_FEATURES for ds in source.values()):
        return source  # already normalised (load_image_caption_source output)
    return load_image_caption_source(source, image_root=image_root, **dict(source_kwargs or {}))


def _load_index(index: Any, name: str) -> Any:
    if index is None:
        return None
    if isinstance(index, (str, os.PathLike)):
        from semcore_hf.identifiers import SIDIndex  # lower layer; imported lazily to keep `data` import light

        index = SIDIndex.from_pretrained(str(index))
    missing = [a for a in ("target_ids", "sids", "target_sid", "target_cluster") if not hasattr(index, a)]
    if missing:
        raise TypeError(f"{name} must be a SIDIndex (or its directory); {type(index).__name__} lacks {missing}.")
    return index


def _index_fingerprint(index: Any) -> str | None:
    if index is None:
        return None
    return Hasher.hash(
        (
            [str(t) for t in index.target_ids],
            list(index.sids),
            np.asarray(index.target_sid, dtype=np.int64).tobytes(),
            np.asarray(index.target_cluster, dtype=np.int64).tobytes(),
        )
    )


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


class _IndexView:
    """Fast target -> SID / cluster lookups through the SIDIndex contract attributes."""

    def __init__(self, index: Any, name: str):
        self.name = name
        self.pos = {str(t): i for i, t in enumerate(index.target_ids)}
        self.sids = list(index.sids)
        self.target_sid = np.asarray(index.target_sid, dtype=np.int64)
        self.target_cluster = np.asarray(index.target_cluster, dtype=np.int64)

    def position(self, target_id: str, split: str) -> int:
        pos = self.pos.get(target_id)
        if pos is None:
            raise ValueError(
                f"Target {target_id!r} (split {split!r}) is not in the {self.name}. Build the index over every target "
                "of every split (`t2i_targets` / `i2t_targets` without `splits`), or add the missing ones with "
                "`index.add(target_ids, texts)`."
            )
        return pos

    def sid(self, target_id: str, split: str) -> str:
        return self.sids[int(self.target_sid[self.position(target_id, split)])]

    def cluster(self, target_id: str, split: str) -> int:
        return int(self.target_cluster[self.position(target_id, split)])


def _draw(rng: np.random.Generator, pool: np.ndarray, n: int, exclude: set[int]) -> list[int]:
    """Up to `n` distinct members of `pool` not in `exclude`."""
    if n <= 0 or len(pool) == 0:
        return []
    if len(pool) <= 4 * (n + len(exclude)) + 16:  # small pool: one permutation
        out = []
        for c in rng.permutation(pool):
            if int(c) not in exclude:
                out.append(int(c))
                if len(out) == n:
                    break
        return out
    seen, out = set(exclude), []  # large pool: rejection sampling, O(n) expected
    while len(out) < n:
        c = int(pool[rng.integers(len(pool))])
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


class _TaskRows:
    """Row generators of one split; one method per task."""

    def __init__(
        self, rows, split, t2i, i2t, text_only, string_prompts, num_negatives, seed, check_images, pseudo_queries=None
    ):
        self.split = split
        self.pseudo_queries = pseudo_queries
        self.t2i_view, self.i2t_view = t2i, i2t
        self.text_only = text_only
        self.string_prompts = string_prompts
        self.num_negatives = num_negatives
        self.seed = seed
        self.check_images = check_images
        meta = rows.select_columns(["image_id", "captions", "generated_caption"]).to_dict()
        self.ids = [str(i) for i in meta["image_id"]]
        self.captions = meta["captions"]
        self.generated = meta["generated_caption"]
        self._images = rows.select_columns(["image"]).cast_column("image", Image(decode=False))
        self._checked: set[int] = set()
        self._warned = False

    # -- helpers ------------------------------------------------------------------------------------------------------

    def _prompt(self, messages: list[dict]) -> list[dict]:
        has_image = any(p.get("type") == "image" for m in messages for p in m["content"])
        return prompts.to_text_only(messages) if self.string_prompts and not has_image else messages

    def _image(self, i: int) -> dict:
        image = self._images[i]["image"]
        if self.check_images and i not in self._checked:
            _verify_image(image, self.ids[i])
            self._checked.add(i)
        return {"path": image.get("path"), "bytes": image.get("bytes")}

    def _generated(self, i: int) -> str:
        text = self.generated[i]
        if not text:
            raise ValueError(
                f"Image {self.ids[i]!r} (split {self.split!r}) has no generated caption, which the text_only variant "
                "uses in place of the image. Pass `generated_captions=` (from `caption_images`) to "
                "`load_image_caption_source`, or build without text_only for a VLM."
            )
        return text

    def _rng(self, task: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, _stable_hash(task), _stable_hash(self.split)])

    def _negatives(self, rng, by_cluster, pool, cluster, exclude) -> list[int]:
        out = _draw(rng, by_cluster[cluster], self.num_negatives, exclude)
        if len(out) < self.num_negatives:  # too few others in the cluster: fall back to the other clusters
            out += _draw(rng, pool, self.num_negatives - len(out), exclude | set(out))
        if len(out) < self.num_negatives and not self._warned:
            self._warned = True
            warnings.warn(
                f"Split {self.split!r} has too few targets for {self.num_negatives} negative(s) per positive; some "
                "positives get fewer.",
                UserWarning,
                stacklevel=2,
            )
        return out

    @staticmethod
    def _completion(text: str) -> list[dict]:
        return prompts.assistant_message(text)

    # -- tasks --------------------------------------------------------------------------------------------------------

    def t2i(self) -> Iterator[dict]:
        for image_id, caps in zip(self.ids, self.captions):
            sid = self.t2i_view.sid(image_id, self.split)
            completion = self._completion(sid_to_completion(sid))
            for j, cap in enumerate(caps):
                yield {
                    "prompt": self._prompt(prompts.t2i_prompt(cap)),
                    "completion": completion,
                    "target_id": image_id,
                    "sid": sid,
                    "query_id": caption_id(image_id, j),
                }

    def pseudo_t2i(self) -> Iterator[dict]:
        missing = [i for i in self.ids if i not in self.pseudo_queries]
        if missing:
            raise ValueError(
                f"{len(missing)} image(s) of split {self.split!r} have no entry in pseudo_queries (e.g. "
                f"{missing[:3]}); write pseudo-queries for every image (an empty list is allowed)."
            )
        for image_id in self.ids:
            sid = self.t2i_view.sid(image_id, self.split)
            completion = self._completion(sid_to_completion(sid))
            for j, query in enumerate(self.pseudo_queries[image_id]):
                yield {
                    "prompt": self._prompt(prompts.t2i_prompt(query)),
                    "completion": completion,
                    "target_id": image_id,
                    "sid": sid,
                    "query_id": f"{image_id}@pseudo{j}",
                }

    def caption(self) -> Iterator[dict]:
        for i, (image_id, caps) in enumerate(zip(self.ids, self.captions)):
            image = self._image(i)
            for j, cap in enumerate(caps):
                yield {
                    "prompt": prompts.caption_prompt(),
                    "completion": self._completion(cap),
                    "images": [image],
                    "target_id": caption_id(image_id, j),
                    "sid": "",
                    "query_id": image_id,
                }

    def i2t(self) -> Iterator[dict]:
        for i, (image_id, caps) in enumerate(zip(self.ids, self.captions)):
            image = self._image(i)
            for j in range(len(caps)):
                target = caption_id(image_id, j)
                sid = self.i2t_view.sid(target, self.split)
                yield {
                    "prompt": prompts.i2t_prompt(),
                    "completion": self._completion(sid_to_completion(sid)),
                    "images": [image],
                    "target_id": target,
                    "sid": sid,
                    "query_id": image_id,
                }

    def memorize_t2i(self) -> Iterator[dict]:
        for i, image_id in enumerate(self.ids):
            sid = self.t2i_view.sid(image_id, self.split)
            row = {"completion": self._completion(sid_to_completion(sid)), "target_id": image_id, "sid": sid}
            if self.text_only:
                row["prompt"] = self._prompt(prompts.memorize_text_prompt(self._generated(i)))
            else:
                row["prompt"] = prompts.memorize_image_prompt()
                row["images"] = [self._image(i)]
            yield {**row, "query_id": image_id}

    def memorize_i2t(self) -> Iterator[dict]:
        for image_id, caps in zip(self.ids, self.captions):
            for j, cap in enumerate(caps):
                target = caption_id(image_id, j)
                sid = self.i2t_view.sid(target, self.split)
                yield {
                    "prompt": self._prompt(prompts.memorize_caption_prompt(cap)),
                    "completion": self._completion(sid_to_completion(sid)),
                    "target_id": target,
                    "sid": sid,
                    "query_id": target,
                }

    def verify_t2i(self) -> Iterator[dict]:
        # Candidates are the images of this split, grouped by their K-Means cluster in the T2I index.
        clusters = np.array([self.t2i_view.cluster(i, self.split) for i in self.ids], dtype=np.int64)
        pool = np.arange(len(self.ids))
        by_cluster = {int(c): pool[clusters == c] for c in np.unique(clusters)}
        rng = self._rng("verify_t2i")
        for i, (image_id, caps) in enumerate(zip(self.ids, self.captions)):
            for j, cap in enumerate(caps):
                negatives = self._negatives(rng, by_cluster, pool, int(clusters[i]), {i})
                for k, label in [(i, 1)] + [(n, 0) for n in negatives]:
                    candidate = self.ids[k]
                    row = {
                        "completion": self._completion(prompts.YES if label else prompts.NO),
                        "target_id": candidate,
                        "sid": self.t2i_view.sid(candidate, self.split),
                        "query_id": caption_id(image_id, j),
                        "label": label,
                    }
                    if self.text_only:
                        row["prompt"] = self._prompt(prompts.verify_t2i_text_prompt(cap, self._generated(k)))
                    else:
                        row["prompt"] = prompts.verify_t2i_prompt(cap)
                        row["images"] = [self._image(k)]
                    yield row

    def verify_i2t(self) -> Iterator[dict]:
        # Candidates are the captions of this split (flat index), grouped by their cluster in the I2T index.
        owner, cap_ids, texts = [], [], []
        for i, (image_id, caps) in enumerate(zip(self.ids, self.captions)):
            for j, cap in enumerate(caps):
                owner.append(i)
                cap_ids.append(caption_id(image_id, j))
                texts.append(cap)
        clusters = np.array([self.i2t_view.cluster(c, self.split) for c in cap_ids], dtype=np.int64)
        pool = np.arange(len(cap_ids))
        by_cluster = {int(c): pool[clusters == c] for c in np.unique(clusters)}
        first = np.searchsorted(np.asarray(owner), np.arange(len(self.ids)))  # first flat caption of each image
        rng = self._rng("verify_i2t")
        for i, image_id in enumerate(self.ids):
            own = set(range(int(first[i]), int(first[i]) + len(self.captions[i])))  # every caption of the image
            for pos in sorted(own):
                negatives = self._negatives(rng, by_cluster, pool, int(clusters[pos]), own)
                for k, label in [(pos, 1)] + [(n, 0) for n in negatives]:
                    row = {
                        "completion": self._completion(prompts.YES if label else prompts.NO),
                        "target_id": cap_ids[k],
                        "sid": self.i2t_view.sid(cap_ids[k], self.split),
                        "query_id": image_id,
                        "label": label,
                    }
                    if self.text_only:
                        row["prompt"] = self._prompt(prompts.verify_t2i_text_prompt(texts[k], self._generated(i)))
                    else:
                        row["prompt"] = prompts.verify_i2t_prompt(texts[k])
                        row["images"] = [self._image(i)]
                    yield row


def _verify_image(image: dict, image_id: str) -> None:
    """Decode an image once, so a missing, truncated or corrupt file fails here, naming it, before anything is written.

    A full decode (`sources.verify_image`), not PIL's `verify()` alone, which never reads JPEG data.
    """
    verify_image(image, image_id)
