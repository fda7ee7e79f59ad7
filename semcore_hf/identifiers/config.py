"""`SIDConfig`: every knob of SID building, saved next to the index as `sid_index_config.json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class SIDConfig:
    """How a `SIDIndex` is built: embedder, K-Means, c-TF-IDF global IDs, KeyBERT lexical IDs, collisions.

    Stop-word policy (`stop_words="semcore"`, the default): scikit-learn's English stop-word list *minus* the number
    words ("one" ... "twenty", "hundred", "first", "second", "third", "last", "next", ...) and minus words that
    discriminate between captions (spatial words such as "behind", "front", "top", "under", "inside"; quantities such
    as "few", "many", "empty", "full"; content words such as "fire" that the list deletes). With the plain English list
    "three o'clock" and "four o'clock" would get the same SID. Negation and polarity words are kept as well ("no",
    "not", "nor", "never", "none", "nothing", "without", "except", "on", "off", "done", "only", "more", "less", ...;
    `semcore_hf.identifiers.text.POLARITY_WORDS`), so "no parking" and "parking" or "cup without handle" and "cup
    handle" get different SIDs; they never name a cluster (global ID), only lexical IDs. `"english"` is
    scikit-learn's list, `None` keeps all words, and a list of strings is used as is (normalised like the texts). A
    text made only of stop words keeps its own words.

    Words: texts are Unicode-normalised first (NFKC; typographic apostrophes, quotes and dashes become ASCII, so
    "woman’s" and "woman's" are the same word; Latin letters lose their diacritics, other scripts keep their marks).
    A word is a run of letters, digits and combining marks of any script, with inner `'` or `-`; every Han ideograph
    and hiragana is a word of its own and a katakana run is one word. A text without any word (only emoji, symbols
    or punctuation) is refused before embedding, naming its target id.

    Multilingual targets: set `embedding_model` to a multilingual sentence-transformer (e.g.
    `"sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"` or `"intfloat/multilingual-e5-small"`; the
    English default embeds other scripts poorly, which spoils both the clusters and the KeyBERT keyphrases), and
    `stop_words` to the stop words of the language(s) (a list; `"semcore"` is English only, so for other languages
    the global IDs fill up with function words such as "的" or "على"). For Chinese and Japanese, whose words here are
    single characters, `keyphrase_ngram_range=(1, 3)` lets a keyphrase hold a whole word. Thai, Lao, Khmer and
    Myanmar are written without spaces: segment them into space-separated words first. The model that generates the
    SIDs needs a tokenizer that covers the script (byte-level BPE or SentencePiece with byte fallback).

    Args:
        embedding_model (`str`, defaults to `"sentence-transformers/all-MiniLM-L6-v2"`):
            Local path or Hub id of a sentence-transformers model. Only loaded when no embedder is injected; a Hub id
            is downloaded only if it is not cached (and never with `HF_HUB_OFFLINE=1`).
        num_clusters (`int`, defaults to 32): K of K-Means, i.e. the number of global IDs.
        global_words (`int`, defaults to 2): m, words per global ID.
        lexical_phrases (`int`, defaults to 3): n, keyphrases per lexical ID (at most).
        keyphrase_ngram_range (`tuple[int, int]`, defaults to `(1, 2)`): n-gram lengths of keyphrase candidates.
        stop_words (`str`, `list[str]` or `None`, defaults to `"semcore"`): see above.
        dedup_extra_words (`int`, defaults to 0):
            Semantic de-duplication drops every candidate that contains a word of the target's global ID; this also
            drops candidates containing one of the cluster's next `dedup_extra_words` top c-TF-IDF words.
        cluster_words_top_k (`int`, defaults to 10): how many top words per cluster the index keeps.
        minibatch_threshold (`int`, defaults to 100000): above this many targets `MiniBatchKMeans` is used.
        kmeans_n_init (`int`, defaults to 3): K-Means restarts.
        kmeans_max_iter (`int`, defaults to 300): K-Means iterations.
        minibatch_batch_size (`int`, defaults to 4096): batch size of `MiniBatchKMeans`.
        batch_size (`int`, defaults to 64): texts per embedding batch (and per `datasets.map` batch).
        normalize_embeddings (`bool`, defaults to `True`): L2-normalise embeddings before clustering.
        seed (`int`, defaults to 0): random state of K-Means.
        resolve_collisions (`bool`, defaults to `False`):
            Try to separate targets that share a full SID by extending their lexical IDs with their next-best distinct
            keyphrases (so those lexical IDs can have more than `lexical_phrases` phrases). Targets with identical
            text can never be separated and stay a collision group.
        max_extra_phrases (`int`, defaults to 2): at most this many phrases are appended when resolving collisions.
        device (`str`, *optional*): device of the embedder loaded from `embedding_model`.
        id_kind (`str`, defaults to `"semantic"`):
            The identifier kind: `"semantic"` (SemCORE's SIDs), or one of the baselines that run through the same
            pipeline (`semcore_hf.identifiers.kinds`): `"numeric"` (GRACE-style hierarchical K-Means paths over the
            same embeddings), `"atomic"` (one new token per target) or `"text"` (the target's own words).
        global_word_rule (`str`, defaults to `"ctfidf"`): how the m global words are picked among the cluster's
            c-TF-IDF top words: `"ctfidf"` (the highest weights, the paper's rule) or `"coverage"` (greedy maximum
            coverage: first the word the most members' texts contain; see `ctfidf.coverage_order`). The index reports
            the share of targets whose text holds a global word (`collision_report()["global_word_coverage"]`).
        use_global_id (`bool`, defaults to `True`): `"semantic"` only; `False` drops the global ID (ablation).
        use_lexical_id (`bool`, defaults to `True`): `"semantic"` only; `False` drops the lexical ID (ablation).
        numeric_branching (`int`, defaults to 10): `"numeric"`: clusters per node of the K-Means tree.
        numeric_leaf_size (`int`, defaults to 10): `"numeric"`: a node with at most this many targets numbers them.
        text_id_max_words (`int`, defaults to 12): `"text"`: at most this many words of the target's text.
        embedding_chunk_size (`int`, defaults to 65536): texts handed to the embedder per call; their embeddings are
            written into one preallocated array, so building holds one chunk of texts besides the (n, d) matrix.
        embedding_devices (`list[str]`, *optional*): embed through a sentence-transformers multi-process pool
            (`SentenceTransformer.start_multi_process_pool`) with one worker per device, e.g. `["cuda:0", "cuda:1"]`
            (or `["cpu", "cpu"]`); needs a `SentenceTransformer` embedder. The pool lives for one `build`.
        embedding_distributed (`bool`, defaults to `False`): under `accelerate launch` or `torchrun` (several
            devices or machines), split every embedding call across the torch.distributed processes and all-gather
            the embeddings; every process builds the same index. Needs an initialised process group (`semcore-hf
            build-sids` initialises it when launched so).
    """

    embedding_model: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        metadata={"help": "Local path or Hub id of the sentence-transformers model that embeds one text per target."},
    )
    num_clusters: int = field(default=32, metadata={"help": "K, the number of K-Means clusters (global IDs)."})
    global_words: int = field(default=2, metadata={"help": "m, words per global ID (top c-TF-IDF words)."})
    lexical_phrases: int = field(default=3, metadata={"help": "n, KeyBERT keyphrases per lexical ID (at most)."})
    keyphrase_ngram_range: tuple[int, int] = field(
        default=(1, 2), metadata={"help": "Min and max n-gram length of keyphrase candidates."}
    )
    stop_words: str | list[str] | None = field(
        default="semcore",
        metadata={
            "help": "'semcore' (sklearn English minus number, negation/polarity, spatial and other discriminative "
            "words), 'english', 'none', or an explicit list of words (use the language's list for other languages)."
        },
    )
    dedup_extra_words: int = field(
        default=0,
        metadata={
            "help": "Also drop keyphrases containing one of the cluster's next N top words (beyond the global ID)."
        },
    )
    cluster_words_top_k: int = field(default=10, metadata={"help": "Top c-TF-IDF words kept per cluster."})
    minibatch_threshold: int = field(
        default=100_000, metadata={"help": "Above this many targets, MiniBatchKMeans replaces KMeans."}
    )
    kmeans_n_init: int = field(default=3, metadata={"help": "Number of K-Means initialisations."})
    kmeans_max_iter: int = field(default=300, metadata={"help": "Maximum K-Means iterations."})
    minibatch_batch_size: int = field(default=4096, metadata={"help": "Batch size of MiniBatchKMeans."})
    batch_size: int = field(default=64, metadata={"help": "Texts per embedding batch (and per datasets.map batch)."})
    normalize_embeddings: bool = field(default=True, metadata={"help": "L2-normalise embeddings before K-Means."})
    seed: int = field(default=0, metadata={"help": "Random seed of K-Means (building is deterministic given it)."})
    resolve_collisions: bool = field(
        default=False,
        metadata={
            "help": "Separate SID collisions by appending next-best distinct keyphrases (identical texts can't)."
        },
    )
    max_extra_phrases: int = field(
        default=2, metadata={"help": "Most keyphrases appended to a lexical ID when resolving collisions."}
    )
    device: str | None = field(default=None, metadata={"help": "Device of the embedder loaded from embedding_model."})
    id_kind: str = field(
        default="semantic",
        metadata={
            "help": "Identifier kind: semantic (SemCORE SIDs), numeric (hierarchical K-Means paths), atomic (one "
            "new token per target) or text (the target's own words).",
            "choices": ["semantic", "numeric", "atomic", "text"],
        },
    )
    global_word_rule: str = field(
        default="ctfidf",
        metadata={
            "help": "How the global words are chosen among a cluster's c-TF-IDF top words: ctfidf (the paper's: the "
            "highest weights) or coverage (greedy: the words the most members' texts contain).",
            "choices": ["ctfidf", "coverage"],
        },
    )
    use_global_id: bool = field(default=True, metadata={"help": "Semantic IDs: keep the global ID (ablation)."})
    use_lexical_id: bool = field(default=True, metadata={"help": "Semantic IDs: keep the lexical ID (ablation)."})
    numeric_branching: int = field(default=10, metadata={"help": "Numeric IDs: clusters per node of the tree."})
    numeric_leaf_size: int = field(default=10, metadata={"help": "Numeric IDs: most targets numbered in a leaf."})
    text_id_max_words: int = field(default=12, metadata={"help": "Text IDs: most words of the target's text."})
    embedding_chunk_size: int = field(
        default=65_536, metadata={"help": "Texts per embedder call, streamed into one preallocated array."}
    )
    embedding_devices: list[str] | None = field(
        default=None,
        metadata={"help": "Embed with a sentence-transformers multi-process pool on these devices (cuda:0 cuda:1)."},
    )
    embedding_distributed: bool = field(
        default=False,
        metadata={
            "help": "Split embedding across the torch.distributed processes (accelerate launch / torchrun) and "
            "all-gather the embeddings."
        },
    )

    def __post_init__(self):
        if not isinstance(self.embedding_model, str) or not self.embedding_model.strip():
            raise ValueError("SIDConfig.embedding_model must be a non-empty local path or Hub id.")
        from semcore_hf.identifiers.kinds import ID_KINDS

        if self.id_kind not in ID_KINDS:
            raise ValueError(f"SIDConfig.id_kind must be one of {ID_KINDS}, got {self.id_kind!r}.")
        if self.global_word_rule not in ("ctfidf", "coverage"):
            raise ValueError(
                f"SIDConfig.global_word_rule must be 'ctfidf' or 'coverage', got {self.global_word_rule!r}."
            )
        if not (self.use_global_id or self.use_lexical_id):
            raise ValueError("SIDConfig: use_global_id and use_lexical_id cannot both be False (no identifier left).")
        for name in (
            "num_clusters",
            "numeric_branching",
            "global_words",
            "lexical_phrases",
            "batch_size",
            "kmeans_n_init",
            "numeric_leaf_size",
            "text_id_max_words",
            "embedding_chunk_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SIDConfig.{name} must be a positive integer, got {value!r}.")
        for name in (
            "dedup_extra_words",
            "cluster_words_top_k",
            "minibatch_threshold",
            "max_extra_phrases",
            "seed",
            "kmeans_max_iter",
            "minibatch_batch_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"SIDConfig.{name} must be a non-negative integer, got {value!r}.")
        if self.numeric_branching < 2:
            raise ValueError(f"SIDConfig.numeric_branching must be at least 2, got {self.numeric_branching!r}.")
        if self.kmeans_max_iter < 1 or self.minibatch_batch_size < 1:
            raise ValueError("SIDConfig.kmeans_max_iter and minibatch_batch_size must be at least 1.")
        rng = tuple(self.keyphrase_ngram_range)
        if len(rng) != 2 or not all(isinstance(x, int) for x in rng) or rng[0] < 1 or rng[1] < rng[0]:
            raise ValueError(
                "SIDConfig.keyphrase_ngram_range must be (min, max) with 1 <= min <= max, "
                f"got {self.keyphrase_ngram_range!r}."
            )
        self.keyphrase_ngram_range = (int(rng[0]), int(rng[1]))
        if isinstance(self.stop_words, str) and self.stop_words not in ("semcore", "english", "none"):
            raise ValueError(
                "SIDConfig.stop_words must be 'semcore', 'english', 'none', None or a list of words, "
                f"got {self.stop_words!r}."
            )
        if self.embedding_devices is not None:
            devices = self.embedding_devices
            if isinstance(devices, str):  # "cuda:0,cuda:1"
                devices = devices.split(",")
            devices = [str(d).strip() for d in devices]
            if not devices or not all(devices):
                raise ValueError(
                    f"SIDConfig.embedding_devices must be a non-empty list of devices, got {self.embedding_devices!r}."
                )
            self.embedding_devices = devices
        if isinstance(self.stop_words, (list, tuple)):
            self.stop_words = [str(w) for w in self.stop_words]
        self.cluster_words_top_k = max(self.cluster_words_top_k, self.global_words + self.dedup_extra_words)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        d = asdict(self)
        d["keyphrase_ngram_range"] = list(self.keyphrase_ngram_range)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SIDConfig:
        """Inverse of `to_dict`; unknown keys raise a `ValueError` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown SIDConfig keys {unknown}; expected a subset of {sorted(known)}.")
        data = dict(data)
        if "keyphrase_ngram_range" in data:
            data["keyphrase_ngram_range"] = tuple(data["keyphrase_ngram_range"])
        return cls(**data)
