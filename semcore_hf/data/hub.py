"""Saving and publishing the SID training data: Parquet (images embedded) + a dataset card with a `configs:` block.

Layout of `output_dir`:

```
README.md                                   dataset card; YAML `configs:` maps each task to its Parquet files
{task}/{split}-{hash}.parquet               TRL-ready data, images embedded (the files can move machines)
arrow/{task}/                               `save_to_disk` copy (read with `datasets.load_from_disk`); not pushed
```

`datasets.load_dataset(output_dir, name=task)` and `trl sft --dataset_name output_dir --dataset_config task` read the
Parquet files (`load_dataset` cannot read a `save_to_disk` folder, hence both).

`{hash}` is a digest of the file's bytes. `datasets` caches a local folder under its name, the config and a hash of
the card's `configs:` block, not of the data: without it, rebuilding a folder (or building another folder with the
same name) would make `load_dataset` and `trl sft` silently train on the previous build's cached rows.

The folder is replaced as a whole on every save (`semcore_hf._io.atomic_artefact`): its manifest lists the files a
build wrote, so the next build drops exactly those (stale Parquet files included) and keeps every other file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from datasets import Dataset, DatasetDict, Image
from datasets.table import embed_table_storage

from semcore_hf._io import atomic_artefact, files_matching

ARROW_DIR = "arrow"
ARTEFACT_KIND = "sid_dataset"
PUSH_IGNORE_PATTERNS = [f"{ARROW_DIR}/*", f"{ARROW_DIR}/**", ".*", "**/.*"]


def parquet_path(task: str, split: str, digest: str) -> str:
    """Relative path of the Parquet file of `task` / `split`: ``{task}/{split}-{digest}.parquet``."""
    return f"{task}/{split}-{digest}.parquet"


def save_sid_dataset(
    datasets_by_task: Mapping[str, DatasetDict],
    output_dir: str | os.PathLike,
    *,
    save_arrow: bool = True,
    default_task: str | None = None,
    pretty_name: str | None = None,
    card_text: str | None = None,
) -> Path:
    """Write every task as Parquet (images embedded) plus a dataset card, and optionally a `save_to_disk` copy.

    The new version is written to a hidden sibling folder and swapped with `output_dir` in one atomic step, so a
    failure (a missing image file, say) or a killed process leaves `output_dir` exactly as it was, and a reader sees
    the complete previous build or the complete new one. The files of the previous build (listed in the folder's
    manifest) are dropped; any other file in `output_dir` is kept, and one the new build would overwrite is refused
    with `semcore_hf._io.ArtefactConflictError`.

    Args:
        datasets_by_task (`Mapping[str, datasets.DatasetDict]`): output of `build_sid_dataset`.
        output_dir (`str` or `os.PathLike`): destination folder (created if missing).
        save_arrow (`bool`, defaults to `True`): also `save_to_disk` each task under `arrow/{task}`.
        default_task (`str`, *optional*): the config `load_dataset(output_dir)` picks without `name`; defaults to
            the first task.
        pretty_name (`str`, *optional*): title of the dataset card.
        card_text (`str`, *optional*): extra Markdown appended to the dataset card.

    Returns:
        `pathlib.Path`: `output_dir`.
    """
    if not datasets_by_task:
        raise ValueError("Nothing to save: datasets_by_task is empty.")
    for task, dd in datasets_by_task.items():
        if not isinstance(dd, DatasetDict):
            raise TypeError(f"Task {task!r}: expected a datasets.DatasetDict, got {type(dd).__name__}.")
    default_task = default_task or next(iter(datasets_by_task))
    if default_task not in datasets_by_task:
        raise ValueError(f"default_task {default_task!r} is not among the tasks {list(datasets_by_task)}.")
    output_dir = Path(output_dir)
    paths: dict[tuple[str, str], str] = {}
    with atomic_artefact(output_dir, ARTEFACT_KIND, legacy_files=_legacy_files) as tmp:
        for task, dd in datasets_by_task.items():
            for split, ds in dd.items():
                staging = tmp / task / f".{split}.parquet"
                _write_parquet(ds, staging)
                paths[task, split] = parquet_path(task, split, _file_digest(staging))
                os.replace(staging, tmp / paths[task, split])
            if save_arrow:
                dd.save_to_disk(str(tmp / ARROW_DIR / task))
        (tmp / "README.md").write_text(
            _dataset_card(datasets_by_task, paths, default_task, pretty_name, card_text), encoding="utf-8"
        )
    return output_dir


def _legacy_files(directory: Path) -> list[str]:
    """The files of a build saved before manifests existed: its card and the Parquet and `arrow/` files it names."""
    try:
        text = (directory / "README.md").read_text(encoding="utf-8")
        parts = text.split("---", 2)
        meta = yaml.safe_load(parts[1]) if len(parts) == 3 and not parts[0].strip() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    if not isinstance(meta, dict) or "semcore" not in (meta.get("tags") or []):
        return []
    configs = [c for c in meta.get("configs") or [] if isinstance(c, dict)]
    files = ["README.md"]
    for config in configs:
        for entry in config.get("data_files") or []:
            path = entry.get("path") if isinstance(entry, dict) else None
            if isinstance(path, str) and (directory / path).is_file():
                files.append(path)
    tasks = [c["config_name"] for c in configs if isinstance(c.get("config_name"), str)]
    return files + files_matching(directory, [f"{ARROW_DIR}/{task}/*" for task in tasks])


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def push_sid_dataset_to_hub(
    output_dir_or_datasets: str | os.PathLike | Mapping[str, DatasetDict],
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload SemCORE SID training data",
    create_pr: bool = False,
) -> Any:
    """Publish the SID training data as a Hub dataset repo (Parquet + dataset card with `configs:`).

    A folder written by `save_sid_dataset` is uploaded as is (without its `arrow/` copy); a mapping of datasets is
    first saved to a temporary folder. `Dataset.push_to_hub` is not used, so every task and its card arrive in a
    single commit.

    Args:
        output_dir_or_datasets (`str`, `os.PathLike` or `Mapping[str, datasets.DatasetDict]`):
            A `save_sid_dataset` folder, or the output of `build_sid_dataset`.
        repo_id (`str`): `"user/name"` of the dataset repo (created if missing).
        token (`str`, *optional*): Hub token (default: the cached login / `HF_TOKEN`).
        private (`bool`, *optional*): visibility of a newly created repo (default: the Hub's).
        revision (`str`, *optional*): branch to commit to.
        commit_message (`str`, defaults to `"Upload SemCORE SID training data"`): the commit message.
        create_pr (`bool`, defaults to `False`): open a pull request instead of committing to the branch.

    Returns:
        `huggingface_hub.CommitInfo`: the upload commit.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    if isinstance(output_dir_or_datasets, Mapping):
        with tempfile.TemporaryDirectory(prefix="semcore_push_") as tmp:
            folder = save_sid_dataset(output_dir_or_datasets, Path(tmp) / "data", save_arrow=False)
            return _upload(api, folder, repo_id, private, revision, commit_message, create_pr)
    folder = Path(output_dir_or_datasets)
    card = folder / "README.md"
    if not card.is_file() or "configs:" not in card.read_text(encoding="utf-8"):
        raise ValueError(
            f"{str(folder)!r} is not a save_sid_dataset folder (no README.md with a `configs:` block); save it with "
            "save_sid_dataset first, or pass the datasets themselves."
        )
    return _upload(api, folder, repo_id, private, revision, commit_message, create_pr)


def load_sid_dataset(
    name_or_path: str | os.PathLike,
    task: str | None = None,
    split: str | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
) -> Any:
    """Load SID training data by folder or Hub dataset id: one task (`name=task`), as `trl sft` reads it.

    A Hub repo is downloaded as a snapshot (`huggingface_hub.snapshot_download`, Parquet and card only) and read
    with `datasets.load_dataset` from there, so it also loads from the Hub cache offline, where `load_dataset("user/
    name")` itself needs the Hub.

    Args:
        name_or_path (`str` or `os.PathLike`): a `save_sid_dataset` folder or a Hub dataset id.
        task (`str`, *optional*): the config (`t2i`, `memorize_t2i`, ...); the card's default if omitted.
        split (`str`, *optional*): e.g. `"train"` or `"train+validation+test"`; a `DatasetDict` of every split if
            omitted.
        revision (`str`, *optional*), token (`str`, *optional*): of the Hub repo.

    Returns:
        `datasets.DatasetDict` or `datasets.Dataset`.
    """
    import datasets

    from semcore_hf.hub import snapshot

    folder = snapshot(
        name_or_path,
        repo_type="dataset",
        revision=revision,
        token=token,
        allow_patterns=["README.md", "*/*.parquet"],
    )
    return datasets.load_dataset(str(folder), name=task, split=split)


# --------------------------------------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------------------------------------


def _upload(api, folder: Path, repo_id, private, revision, commit_message, create_pr):
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="dataset",
        revision=revision,
        commit_message=commit_message,
        create_pr=create_pr,
        ignore_patterns=PUSH_IGNORE_PATTERNS,
    )


def _has_images(features) -> bool:
    found = False

    def visit(f):
        nonlocal found
        if isinstance(f, Image):
            found = True
        elif isinstance(f, dict):
            for v in f.values():
                visit(v)
        elif hasattr(f, "feature"):
            visit(f.feature)

    visit(features)
    return found


def _write_parquet(ds: Dataset, path: Path) -> None:
    """`Dataset.to_parquet` keeps path-based images as paths; embed their bytes batch by batch while writing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = ds.features.arrow_schema  # carries the HF features (Image, List) in its metadata
    batch_size = 100 if _has_images(ds.features) else 1000
    with pq.ParquetWriter(str(path), schema) as writer:
        wrote = False
        for table in ds.with_format("arrow").iter(batch_size=batch_size):
            try:
                table = embed_table_storage(table)
            except FileNotFoundError as e:
                raise FileNotFoundError(f"An image file to embed in {path.name} is missing: {e}") from e
            writer.write_table(table.cast(schema))
            wrote = True
        if not wrote:
            writer.write_table(pa.Table.from_batches([], schema=schema))


def _dataset_card(datasets_by_task, paths, default_task, pretty_name, card_text) -> str:
    configs = []
    for task, dd in datasets_by_task.items():
        entry: dict[str, Any] = {
            "config_name": task,
            "data_files": [{"split": split, "path": paths[task, split]} for split in dd],
        }
        if task == default_task:
            entry["default"] = True
        configs.append(entry)
    from semcore_hf.model_cards import dataset_card

    split_rows = [
        {
            "config": task,
            "rows": ", ".join(f"{s}: {len(ds):,}" for s, ds in dd.items()),
            "images": "yes" if "images" in next(iter(dd.values())).column_names else "no",
        }
        for task, dd in datasets_by_task.items()
    ]
    card = dataset_card(
        configs,
        tags=["semcore", "generative-retrieval", "cross-modal-retrieval", "trl", "sft"],
        pretty_name=pretty_name or "SemCORE SID training data",
        split_rows=split_rows,
        default_task=default_task,
        card_text=card_text.strip() if card_text else None,
    )
    return card.content
