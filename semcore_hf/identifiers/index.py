"""`SIDIndex`: the SID <-> target table, cluster centroids and words; saved as safetensors + JSON (never pickle)."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import ModelHubMixin, hf_hub_download

from semcore_hf._io import atomic_directory
from semcore_hf.identifiers.config import SIDConfig
from semcore_hf.tokenization.sid_format import split_sid

logger = logging.getLogger(__name__)

CONFIG_FILE = "sid_index_config.json"
INDEX_FILE = "sid_index.json"
ARRAYS_FILE = "sid_index.safetensors"
CARD_FILE = "README.md"
FORMAT_VERSION = 1


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

    Saved by `save_pretrained` as `sid_index_config.json`, `sid_index.json`, `sid_index.safetensors` and a
    `README.md` card, written to a temporary folder and moved into place. No `config.json` is written (nor deleted),
    so an index can share a folder with a model.
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
    ):
        self.config = config
        self.sids = list(sids)
        self.target_ids = [str(t) for t in target_ids]
        self.target_sid = np.asarray(target_sid, dtype=np.int64)
        self.target_cluster = np.asarray(target_cluster, dtype=np.int64)
        self.centroids = np.asarray(centroids, dtype=np.float32)
        self.global_ids = list(global_ids)
        self.cluster_words = [list(w) for w in cluster_words]
        n = len(self.target_ids)
        if self.target_sid.shape != (n,) or self.target_cluster.shape != (n,):
            raise ValueError(
                f"target_sid {self.target_sid.shape} and target_cluster {self.target_cluster.shape} "
                f"must have shape ({n},)."
            )
        if n and (self.target_sid.min() < 0 or self.target_sid.max() >= len(self.sids)):
            raise ValueError("target_sid holds rows outside `sids`.")
        if len(self.global_ids) != len(self.centroids) or len(self.cluster_words) != len(self.centroids):
            raise ValueError("global_ids, cluster_words and centroids must have one entry per cluster.")
        self._reindex()

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
        """Number of collision groups, their size histogram and the fraction of targets in a group."""
        from semcore_hf.identifiers.builder import _collision_report

        return _collision_report(self.target_sid, len(self.sids))

    @staticmethod
    def split_sid(sid: str) -> tuple[str, list[str]]:
        """Split ``"dog park | brown puppy, red frisbee"`` into ``("dog park", ["brown puppy", "red frisbee"])``."""
        return split_sid(sid)

    # --------------------------------------------------------------------------------------------- add
    def add(self, target_ids: list[Any], texts: list[str], embedder=None, show_progress: bool = False) -> list[str]:
        """Add targets without re-clustering: nearest centroid, then lexical IDs as in `SIDBuilder.build`.

        SIDs of targets already in the index never change; a new target whose SID is taken joins that collision group
        (or, with `config.resolve_collisions`, is extended with its next-best keyphrases where that separates it).

        Args:
            target_ids (`list`): the new target ids (stored as strings); must not be in the index.
            texts (`list[str]`): one non-empty text per new target.
            embedder (`SentenceTransformer`, *optional*):
                The embedder the index was built with; loaded from `config.embedding_model` when not given.
            show_progress (`bool`, defaults to `False`): progress bars.

        Returns:
            `list[str]`: the SIDs of the new targets.
        """
        from semcore_hf.identifiers import builder as _b
        from semcore_hf.identifiers import keywords as _kw

        if isinstance(texts, str):
            raise TypeError("`texts` must be a list of strings, not a single string.")
        ids = [str(t) for t in target_ids]
        texts = list(texts)
        if len(ids) != len(texts):
            raise ValueError(f"Got {len(ids)} target ids for {len(texts)} texts: pass exactly one id per text.")
        if not ids:
            return []
        _b._check_ids(ids)
        present = [t for t in ids if t in self._target_pos]
        if present:
            raise ValueError(f"Target ids already in the index: {present[:10]!r} ({len(present)} in all).")
        bad = _b._check_texts(texts, ids)
        if bad:
            _b._raise_bad_texts(bad, ids)
        if embedder is None:
            embedder = _b._load_embedder(self.config)
        emb = _kw.embed_texts(embedder, texts, self.config.batch_size, show_progress)
        if emb.shape[1] != self.centroids.shape[1]:
            raise ValueError(
                f"The embedder gives {emb.shape[1]}-d vectors but the centroids are {self.centroids.shape[1]}-d: "
                "use the embedder the index was built with."
            )
        if self.config.normalize_embeddings:
            emb = _b._l2(emb)
        # nearest centroid in Euclidean distance, as K-Means assigns
        d2 = (emb**2).sum(1, keepdims=True) - 2 * emb @ self.centroids.T + (self.centroids**2).sum(1)[None, :]
        clusters = d2.argmin(1).astype(np.int64)
        ranked = _b._lexical_candidates(
            lambda: iter(texts),
            len(texts),
            emb,
            clusters,
            self.global_ids,
            self.cluster_words,
            self.config,
            embedder,
            show_progress,
        )
        fixed = Counter(
            {self.sids[r]: int(c) for r, c in enumerate(np.bincount(self.target_sid, minlength=self.num_sids)) if c}
        )
        full = _b._assign_sids([self.global_ids[c] for c in clusters], ranked, self.config, fixed=fixed)
        self.sids, rows = _b._sid_table(full, self.sids, dict(self._sid_row))
        self.target_ids = self.target_ids + ids
        self.target_sid = np.concatenate([self.target_sid, rows])
        self.target_cluster = np.concatenate([self.target_cluster, clusters])
        self._reindex()
        return full

    # --------------------------------------------------------------------------------------------- I/O
    def _tables(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "sids": self.sids,
            "target_ids": self.target_ids,
            "global_ids": self.global_ids,
            "cluster_words": self.cluster_words,
            "collision_report": self.collision_report(),
        }

    def _card(self) -> str:
        from semcore_hf.model_cards import render_card

        rep = self.collision_report()
        return render_card(
            "index_card",
            num_targets=rep["num_targets"],
            num_sids=rep["num_sids"],
            num_clusters=len(self.global_ids),
            global_words=self.config.global_words,
            lexical_phrases=self.config.lexical_phrases,
            embedding_model=self.config.embedding_model,
            num_collision_groups=rep["num_groups"],
            collision_fraction=rep["fraction_in_groups"],
            resolve_collisions=self.config.resolve_collisions,
            global_ids=self.global_ids[:8],
            examples=[(t, self.sid_of(t)) for t in self.target_ids[:5]],
        )

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.numpy import save_file

        save_directory = Path(save_directory)
        (save_directory / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2, sort_keys=True))
        (save_directory / INDEX_FILE).write_text(json.dumps(self._tables(), ensure_ascii=False))
        save_file(
            {
                "centroids": np.ascontiguousarray(self.centroids),
                "target_sid": np.ascontiguousarray(self.target_sid),
                "target_cluster": np.ascontiguousarray(self.target_cluster),
            },
            str(save_directory / ARRAYS_FILE),
            metadata={"format": "np", "library": "semcore_hf"},
        )
        (save_directory / CARD_FILE).write_text(self._card())

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
        """Save the index to `save_directory` atomically (temporary folder, then moved into place).

        Writes `sid_index_config.json`, `sid_index.json`, `sid_index.safetensors` and `README.md`; other files in the
        folder (a model's `config.json`, say) are left untouched.

        Args:
            save_directory (`str` or `os.PathLike`): destination folder (created if missing).
            config: ignored (the `SIDConfig` is always saved); kept for `ModelHubMixin.push_to_hub`.
            repo_id (`str`, *optional*): Hub repo for `push_to_hub=True`; defaults to the folder name.
            push_to_hub (`bool`, defaults to `False`): also push the saved files to the Hub.
            model_card_kwargs (`dict`, *optional*): unused; kept for API compatibility.

        Returns:
            The commit URL when pushing, else `None`.
        """
        with atomic_directory(save_directory) as tmp:
            self._save_pretrained(tmp)
        if push_to_hub:
            return self.push_to_hub(repo_id or Path(save_directory).name, **push_to_hub_kwargs)
        return None

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
        from safetensors.numpy import load_file

        def fetch(name: str) -> str:
            if os.path.isdir(model_id):
                path = os.path.join(model_id, name)
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"{name} not found in {model_id}: is it a folder saved by SIDIndex?")
                return path
            return hf_hub_download(
                repo_id=model_id,
                filename=name,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )

        config = SIDConfig.from_dict(json.loads(Path(fetch(CONFIG_FILE)).read_text()))
        tables = json.loads(Path(fetch(INDEX_FILE)).read_text())
        if tables.get("format_version", 1) > FORMAT_VERSION:
            raise ValueError(f"{INDEX_FILE} has format {tables['format_version']}; upgrade semcore_hf to read it.")
        arrays = load_file(fetch(ARRAYS_FILE))
        return cls(
            config=config,
            sids=tables["sids"],
            target_ids=tables["target_ids"],
            target_sid=arrays["target_sid"],
            target_cluster=arrays["target_cluster"],
            centroids=arrays["centroids"],
            global_ids=tables["global_ids"],
            cluster_words=tables["cluster_words"],
        )
