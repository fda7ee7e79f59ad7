"""`SIDIndex`: the SID <-> target table, cluster centroids and words; saved as safetensors + JSON (never pickle)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import ModelHubMixin, hf_hub_download

from semcore_hf._io import MANIFEST_FILE, atomic_artefact, read_artefact_files, resolve_artefact_dir
from semcore_hf.identifiers.config import SIDConfig
from semcore_hf.identifiers.sid_format import split_sid

logger = logging.getLogger(__name__)

CONFIG_FILE = "sid_index_config.json"
INDEX_FILE = "sid_index.json"
ARRAYS_FILE = "sid_index.safetensors"
CARD_FILE = "README.md"
# 2: sid_index.json records `target_modality` and the sha256 of the other two files.
# 3: optional `target_text_hash` and numeric-tree arrays, `global_word_coverage`. Versions 1 and 2 are still read.
FORMAT_VERSION = 3
ARTEFACT_KIND = "sid_index"
TARGET_MODALITIES = ("image", "text")


def check_target_modality(target_modality: str | None) -> str | None:
    """`target_modality` if it is `"image"`, `"text"` or `None`; else a `ValueError`."""
    if target_modality is not None and target_modality not in TARGET_MODALITIES:
        raise ValueError(
            f"target_modality must be 'image' (T2I: the targets are images), 'text' (I2T: the targets are captions) "
            f"or None (unknown), got {target_modality!r}."
        )
    return target_modality


class SIDIndex(
    ModelHubMixin,
    library_name="semcore_hf",
    tags=["semcore", "generative-retrieval", "sid-index"],
):
    """The SID table of a corpus (docs/ARCHITECTURE.md, "identifiers").

    Attributes:
        config (`SIDConfig`): how the index was built.
        sids (`list[str]`): unique SID strings; position = SID row.
        target_ids (`list[str]`): every target, in build order.
        target_sid (`np.ndarray[int64]` of shape `(n_targets,)`): SID row of each target.
        target_cluster (`np.ndarray[int64]` of shape `(n_targets,)`): cluster of each target.
        centroids (`np.ndarray[float32]` of shape `(K, d)`): K-Means centroids in the embedder's space.
        global_ids (`list[str]`): the global ID of each cluster.
        cluster_words (`list[list[str]]`): top c-TF-IDF words of each cluster, best first.
        target_modality (`str` or `None`): `"image"` (a T2I index: the targets are images), `"text"` (an I2T index:
            the targets are captions) or `None` (unknown, e.g. an index saved before the attribute existed).
        target_text_hash (`np.ndarray[int64]` of shape `(n_targets,)` or `None`): a digest of each target's
            normalised words, to tell collision groups of identical texts from those of different texts.
        numeric_tree (`NumericTree` or `None`): numeric identifiers only: the K-Means tree new targets descend.
        global_word_coverage (`list[int]` or `None`): `[covered, total]` targets whose text holds a word of their
            cluster's global ID.

    Saved by `save_pretrained` as `sid_index_config.json`, `sid_index.json`, `sid_index.safetensors` and a
    `README.md` card; the folder is replaced as a whole (docs/ARCHITECTURE.md, "Saved data layout"), and other
    files in it are kept. No `config.json` is written, so an index can share a folder with a model.
    """

    def __init__(
        self,
        config: SIDConfig,
        sids: list[str],
        target_ids: list[str],
        target_sid: np.ndarray,
        target_cluster: np.ndarray,
        centroids: np.ndarray,
        global_ids: list[str],
        cluster_words: list[list[str]],
        target_modality: str | None = None,
        target_text_hash: np.ndarray | None = None,
        numeric_tree: Any = None,
        global_word_coverage: list[int] | None = None,
    ):
        self.config = config
        self.target_text_hash = None if target_text_hash is None else np.asarray(target_text_hash, dtype=np.int64)
        self.numeric_tree = numeric_tree
        self.global_word_coverage = None if global_word_coverage is None else [int(x) for x in global_word_coverage]
        self.target_modality = check_target_modality(target_modality)
        self.sids = list(sids)
        self.target_ids = [str(t) for t in target_ids]
        self.target_sid = np.asarray(target_sid, dtype=np.int64)
        self.target_cluster = np.asarray(target_cluster, dtype=np.int64)
        self.centroids = np.asarray(centroids, dtype=np.float32)
        self.global_ids = list(global_ids)
        self.cluster_words = [list(w) for w in cluster_words]
        self._check()
        self._reindex()

    def _check(self) -> None:
        """Raise a `ValueError` naming the first way the tables disagree (every check is vectorised or O(n))."""
        n, k = len(self.target_ids), len(self.global_ids)
        if self.target_text_hash is not None and self.target_text_hash.shape != (n,):
            raise ValueError(f"target_text_hash {self.target_text_hash.shape} must have shape ({n},).")
        if self.config.id_kind == "numeric" and self.numeric_tree is None:
            raise ValueError("A numeric-ID index needs its numeric_tree (the K-Means tree of the paths).")
        if self.target_sid.shape != (n,) or self.target_cluster.shape != (n,):
            raise ValueError(
                f"target_sid {self.target_sid.shape} and target_cluster {self.target_cluster.shape} "
                f"must have shape ({n},) (one entry per target id)."
            )
        if self.centroids.ndim != 2:
            raise ValueError(f"centroids must be a (K, d) matrix, got shape {self.centroids.shape}.")
        if len(self.centroids) != k or len(self.cluster_words) != k:
            raise ValueError(
                f"global_ids ({k}), cluster_words ({len(self.cluster_words)}) and centroids "
                f"({len(self.centroids)}) must have one entry per cluster."
            )
        for name, values in (("target ids", self.target_ids), ("SIDs", self.sids)):
            if len(set(values)) != len(values):
                dup = [v for v, c in Counter(values).items() if c > 1]
                raise ValueError(f"Duplicate {name}: {dup[:5]!r} ({len(dup)} in all); each must appear once.")
        for name, arr, size, table in (
            ("target_sid", self.target_sid, len(self.sids), "sids"),
            ("target_cluster", self.target_cluster, k, "clusters"),
        ):
            if n and (arr.min() < 0 or arr.max() >= size):
                bad = int(np.flatnonzero((arr < 0) | (arr >= size))[0])
                raise ValueError(
                    f"{name} holds {int(arr[bad])} for target {self.target_ids[bad]!r}, outside the {size} {table}."
                )

    def _reindex(self) -> None:
        self._target_pos = {t: i for i, t in enumerate(self.target_ids)}
        self._sid_row = {s: i for i, s in enumerate(self.sids)}
        order = np.argsort(self.target_sid, kind="stable")
        self._row_order = order
        self._row_bounds = np.searchsorted(self.target_sid[order], np.arange(len(self.sids) + 1))

    # --------------------------------------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self.target_ids)

    def __repr__(self) -> str:
        return (
            f"SIDIndex(targets={len(self)}, sids={self.num_sids}, clusters={len(self.global_ids)}, "
            f"collision_groups={self.collision_report()['num_groups']})"
        )

    @property
    def num_sids(self) -> int:
        """Number of unique SIDs."""
        return len(self.sids)

    def sid_of(self, target_id: Any) -> str:
        """The SID of `target_id`."""
        pos = self._target_pos.get(str(target_id))
        if pos is None:
            raise KeyError(f"Unknown target id {target_id!r}.")
        return self.sids[self.target_sid[pos]]

    def sid_row(self, sid: str) -> int:
        """The row of `sid` in `sids`."""
        row = self._sid_row.get(sid)
        if row is None:
            raise KeyError(f"Unknown SID {sid!r}.")
        return row

    def targets_of_row(self, row: int) -> list[str]:
        """The targets whose SID is `sids[row]`, in build order."""
        if not 0 <= row < len(self.sids):
            raise IndexError(f"SID row {row} out of range [0, {len(self.sids)}).")
        a, b = self._row_bounds[row], self._row_bounds[row + 1]
        return [self.target_ids[i] for i in self._row_order[a:b]]

    def targets_of(self, sid: str) -> list[str]:
        """The targets whose SID is `sid` (more than one for a collision group)."""
        return self.targets_of_row(self.sid_row(sid))

    def collision_groups(self) -> dict[str, list[str]]:
        """Every SID shared by more than one target, with its targets."""
        sizes = np.bincount(self.target_sid, minlength=len(self.sids))
        return {self.sids[r]: self.targets_of_row(int(r)) for r in np.flatnonzero(sizes > 1)}

    def collision_report(self) -> dict[str, Any]:
        """Collision groups (count, size histogram, share of targets; by cause: identical or different texts), SIDs
        with an empty lexical ID, and the global-word coverage."""
        from semcore_hf.identifiers.builder import collision_statistics

        report = collision_statistics(
            self.target_sid, len(self.sids), self.target_text_hash, self.sids, self.config.id_kind
        )
        if self.global_word_coverage is not None and self.config.id_kind == "semantic":
            covered, total = self.global_word_coverage
            report["global_word_coverage"] = covered / total if total else 0.0
        return report

    @staticmethod
    def split_sid(sid: str) -> tuple[str, list[str]]:
        """Split ``"dog park | brown puppy, red frisbee"`` into ``("dog park", ["brown puppy", "red frisbee"])``."""
        return split_sid(sid)

    # --------------------------------------------------------------------------------------------- add
    def add(self, target_ids: list[Any], texts: list[str], embedder=None, show_progress: bool = False) -> list[str]:
        """Add targets without re-clustering: nearest centroid, then lexical IDs as in `SIDBuilder.build`
        (`SIDBuilder.assign_new_targets` assigns them; this applies them to the tables).

        SIDs of targets already in the index never change; a new target whose SID is taken joins that collision group
        (unless its text differs: then, as in `build`, it is extended with further keyphrases where that separates
        it). Numeric identifiers descend the K-Means tree to the nearest leaf and take its next number (a path the
        model has never been trained on); atomic identifiers get new tokens, which a trained model does not have.

        Args:
            target_ids (`list`): the new target ids (stored as strings); must not be in the index.
            texts (`list[str]`): one non-empty text per new target.
            embedder (`SentenceTransformer`, *optional*):
                The embedder the index was built with; loaded from `config.embedding_model` when not given.
            show_progress (`bool`, defaults to `False`): progress bars.

        Returns:
            `list[str]`: the SIDs of the new targets.
        """
        from semcore_hf.identifiers.builder import SIDBuilder

        if isinstance(texts, str):
            raise TypeError("`texts` must be a list of strings, not a single string.")
        ids = [str(t) for t in target_ids]
        if not ids and not list(texts):
            return []
        new = SIDBuilder(self.config, embedder=embedder).assign_new_targets(self, ids, texts, show_progress)
        if self.global_word_coverage is not None:
            covered, total = new.coverage
            self.global_word_coverage = [self.global_word_coverage[0] + covered, self.global_word_coverage[1] + total]
        if self.target_text_hash is not None:
            self.target_text_hash = np.concatenate([self.target_text_hash, new.text_keys])
        rows = np.empty(len(new.sids), dtype=np.int64)
        sids, row_of = list(self.sids), dict(self._sid_row)
        for i, sid in enumerate(new.sids):
            if sid not in row_of:
                row_of[sid] = len(sids)
                sids.append(sid)
            rows[i] = row_of[sid]
        self.sids = sids
        self.target_ids = self.target_ids + ids
        self.target_sid = np.concatenate([self.target_sid, rows])
        self.target_cluster = np.concatenate([self.target_cluster, new.clusters])
        self._reindex()
        return new.sids

    # --------------------------------------------------------------------------------------------- I/O
    def _tables(self, file_hashes: dict[str, str]) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "target_modality": self.target_modality,
            # the parts this table belongs with: a part from another save is refused on load
            "files": {name: {"sha256": digest} for name, digest in sorted(file_hashes.items())},
            "sids": self.sids,
            "target_ids": self.target_ids,
            "global_ids": self.global_ids,
            "cluster_words": self.cluster_words,
            "global_word_coverage": self.global_word_coverage,
            "collision_report": self.collision_report(),
        }

    def _card(self) -> str:
        from semcore_hf.model_cards import index_card

        rep = self.collision_report()
        return index_card(
            tags=["semcore", "generative-retrieval", "cross-modal-retrieval", "sid-index"],
            sid_config=self.config.to_dict(),
            num_targets=rep["num_targets"],
            num_sids=rep["num_sids"],
            num_clusters=len(self.global_ids),
            global_words=self.config.global_words,
            lexical_phrases=self.config.lexical_phrases,
            embedding_model=self.config.embedding_model,
            num_collision_groups=rep["num_groups"],
            collision_fraction=rep["fraction_in_groups"],
            resolve_collisions=self.config.resolve_collisions,
            id_kind=self.config.id_kind,
            groups_identical_texts=rep.get("groups_identical_texts"),
            groups_different_texts=rep.get("groups_different_texts"),
            empty_lexical=rep.get("sids_with_empty_lexical_id"),
            coverage=rep.get("global_word_coverage"),
            direction={"image": "text-to-image", "text": "image-to-text"}.get(self.target_modality),
            global_ids=self.global_ids[:8],
            examples=[(t, self.sid_of(t)) for t in self.target_ids[:5]],
        ).content

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.numpy import save_file

        save_directory = Path(save_directory)
        config_bytes = json.dumps(self.config.to_dict(), indent=2, sort_keys=True).encode("utf-8")
        (save_directory / CONFIG_FILE).write_bytes(config_bytes)
        arrays = {
            "centroids": self.centroids,
            "target_sid": self.target_sid,
            "target_cluster": self.target_cluster,
        }
        if self.target_text_hash is not None:
            arrays["target_text_hash"] = self.target_text_hash
        if self.numeric_tree is not None:
            arrays.update(self.numeric_tree.arrays())
        save_file(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            str(save_directory / ARRAYS_FILE),
            metadata={"format": "np", "library": "semcore_hf"},
        )
        hashes = {
            CONFIG_FILE: _sha256(config_bytes),
            ARRAYS_FILE: _sha256((save_directory / ARRAYS_FILE).read_bytes()),
        }
        (save_directory / INDEX_FILE).write_text(
            json.dumps(self._tables(hashes), ensure_ascii=False), encoding="utf-8"
        )
        (save_directory / CARD_FILE).write_text(self._card(), encoding="utf-8")

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        config: Any = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        **push_to_hub_kwargs,
    ) -> str | None:
        """Save the index to `save_directory`; a reader sees the complete old or the complete new index, never a mix.

        Writes `sid_index_config.json`, `sid_index.json`, `sid_index.safetensors`, `README.md` and the folder's
        manifest; other files in the folder (a model's `config.json`, say) are kept. A file of another origin that the
        index would overwrite (a model's `README.md`, say) raises `semcore_hf._io.ArtefactConflictError` instead.

        Args:
            save_directory (`str` or `os.PathLike`): destination folder (created if missing).
            config: ignored (the `SIDConfig` is always saved); kept for `ModelHubMixin.push_to_hub`.
            repo_id (`str`, *optional*): Hub repo for `push_to_hub=True`; defaults to the folder name.
            push_to_hub (`bool`, defaults to `False`): also push the saved files to the Hub.
            model_card_kwargs (`dict`, *optional*): unused; kept for API compatibility.

        Returns:
            The commit URL when pushing, else `None`.
        """
        with atomic_artefact(
            save_directory, ARTEFACT_KIND, format_version=FORMAT_VERSION, legacy_files=_legacy_files
        ) as tmp:
            self._save_pretrained(tmp)
        if push_to_hub:
            return self.push_to_hub(repo_id or Path(save_directory).name, **push_to_hub_kwargs)
        return None

    def push_to_hub(self, repo_id: str, *, ignore_patterns: list[str] | str | None = None, **kwargs) -> str:
        """`huggingface_hub.ModelHubMixin.push_to_hub`, without the local folder manifest (the Hub keeps history).

        Args:
            repo_id (`str`): the Hub model repo.
            ignore_patterns (`list[str]` or `str`, *optional*): files not to push, besides the manifest.
            **kwargs: passed to `ModelHubMixin.push_to_hub` (`commit_message`, `private`, `token`, `branch`, ...).
        """
        patterns = [ignore_patterns] if isinstance(ignore_patterns, str) else list(ignore_patterns or [])
        return super().push_to_hub(repo_id, ignore_patterns=[*patterns, MANIFEST_FILE], **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **kwargs,
    ) -> SIDIndex:
        """Load an index from a local folder or a Hub repo id.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`): a `save_pretrained` folder or a Hub repo id.
            force_download (`bool`, defaults to `False`), token (`str`, *optional*), cache_dir (`str`, *optional*),
            local_files_only (`bool`, defaults to `False`), revision (`str`, *optional*): passed to `hf_hub_download`.
        """
        return cls._from_pretrained(
            model_id=str(pretrained_model_name_or_path),
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            local_files_only=local_files_only,
            token=token,
        )

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        **kwargs,
    ) -> SIDIndex:
        from safetensors.numpy import load as load_arrays

        local = resolve_artefact_dir(model_id)
        where = str(local) if local.is_dir() else model_id
        names = (INDEX_FILE, CONFIG_FILE, ARRAYS_FILE)
        if local.is_dir():
            for name in names:
                if not (local / name).is_file():
                    raise FileNotFoundError(f"{name} not found in {model_id}: is it a folder saved by SIDIndex?")
            # the three parts from one version of the folder, even if a writer replaces it meanwhile
            raw = read_artefact_files(local, names)
        else:
            raw = {
                name: Path(
                    hf_hub_download(
                        repo_id=model_id,
                        filename=name,
                        revision=revision,
                        cache_dir=cache_dir,
                        force_download=force_download,
                        token=token,
                        local_files_only=local_files_only,
                    )
                ).read_bytes()
                for name in names
            }

        def corrupt(name: str, e: Exception) -> ValueError:
            return ValueError(f"{name} in {where} is truncated or corrupt: {type(e).__name__}: {e}")

        def parse_json(name: str, content: bytes) -> dict:
            try:
                data = json.loads(content.decode("utf-8"))
            except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
                raise corrupt(name, e) from None
            if not isinstance(data, dict):
                raise corrupt(name, TypeError(f"expected a JSON object, got {type(data).__name__}"))
            return data

        # the table first: it names the other two parts by hash
        tables = parse_json(INDEX_FILE, raw.pop(INDEX_FILE))
        version = tables.get("format_version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"{INDEX_FILE} in {where} has format {version!r}; upgrade semcore_hf to read it.")
        # each part on its own first (a truncated file is named as such), then whether they belong together
        try:
            config = SIDConfig.from_dict(parse_json(CONFIG_FILE, raw[CONFIG_FILE]))
        except (TypeError, ValueError) as e:
            if str(e).startswith(CONFIG_FILE):
                raise
            raise ValueError(f"{CONFIG_FILE} in {where} is not a valid SIDConfig: {e}") from None
        try:
            arrays = load_arrays(raw[ARRAYS_FILE])
        except Exception as e:  # safetensors raises its own error types on a bad header or short data
            raise corrupt(ARRAYS_FILE, e) from None
        if version >= 2:
            recorded = tables.get("files")
            if not isinstance(recorded, dict):
                raise corrupt(INDEX_FILE, KeyError("'files' (the sha256 of the other parts) is missing"))
            for name, data in raw.items():
                entry = recorded.get(name)
                expected = entry.get("sha256") if isinstance(entry, dict) else None
                actual = _sha256(data)
                if actual != expected:
                    raise ValueError(
                        f"{name} in {where} does not belong with {INDEX_FILE}: its sha256 is {actual[:16]}..., "
                        f"{INDEX_FILE} records {str(expected)[:16]}.... The files come from different saves (or "
                        "different Hub revisions), or one was altered; save or download the index again as a whole."
                    )
        for key, kinds, ndim in (("target_sid", "iu", 1), ("target_cluster", "iu", 1), ("centroids", "f", 2)):
            arr = arrays.get(key)
            if arr is None or arr.dtype.kind not in kinds or arr.ndim != ndim:
                got = "missing" if arr is None else f"{arr.dtype} of shape {arr.shape}"
                want = f"a {ndim}-d {'integer' if kinds == 'iu' else 'float'} array"
                raise corrupt(ARRAYS_FILE, ValueError(f"{key!r} should be {want}, got {got}"))
        missing = [
            k for k in ("sids", "target_ids", "global_ids", "cluster_words") if not isinstance(tables.get(k), list)
        ]
        if missing:
            raise corrupt(INDEX_FILE, KeyError(f"tables {missing} are missing"))
        n_ids, n_rows = len(tables["target_ids"]), len(arrays["target_sid"])
        if n_ids != n_rows:
            raise ValueError(
                f"{INDEX_FILE} and {ARRAYS_FILE} in {where} disagree: {n_ids} target ids but {n_rows} target rows."
            )
        text_hash = arrays.get("target_text_hash")
        if text_hash is not None and (text_hash.dtype.kind not in "iu" or text_hash.shape != (n_ids,)):
            raise corrupt(ARRAYS_FILE, ValueError(f"'target_text_hash' should be {n_ids} integers"))
        coverage = tables.get("global_word_coverage")
        try:
            from semcore_hf.identifiers.kinds import NumericTree

            return cls(
                config=config,
                sids=tables["sids"],
                target_ids=tables["target_ids"],
                target_sid=arrays["target_sid"],
                target_cluster=arrays["target_cluster"],
                centroids=arrays["centroids"],
                global_ids=tables["global_ids"],
                cluster_words=tables["cluster_words"],
                target_modality=tables.get("target_modality"),
                target_text_hash=text_hash,
                numeric_tree=NumericTree.from_arrays(arrays),
                global_word_coverage=coverage if isinstance(coverage, list) and len(coverage) == 2 else None,
            )
        except ValueError as e:
            raise ValueError(f"The SID index in {where} is inconsistent ({INDEX_FILE}, {ARRAYS_FILE}): {e}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _legacy_files(directory: Path) -> list[str]:
    """The files of an index saved before manifests existed (format 1), found in `directory`."""
    if not (directory / INDEX_FILE).is_file():
        return []
    names = [n for n in (CONFIG_FILE, INDEX_FILE, ARRAYS_FILE) if (directory / n).is_file()]
    card = directory / CARD_FILE
    if card.is_file() and "sid-index" in card.read_text(encoding="utf-8", errors="replace")[:1000]:
        names.append(CARD_FILE)  # the index card, not a model's README
    return names
