"""`SIDRetrievalEvaluator`: Recall@K of a model being trained, in the style of sentence-transformers' evaluators.

Like `sentence_transformers.evaluation.InformationRetrievalEvaluator` it holds the queries, their relevant targets and
the corpus (here: a `QuerySet` and the `SIDIndex` of the gallery), is called with a model and returns its metrics
with a name prefix (`{name}_recall@1`, ...), and names a `primary_metric`. It is also a `transformers.TrainerCallback`:
added to a `Trainer` / TRL `SFTTrainer`, it retrieves at the end of every epoch and logs Recall@K next to the loss.

    evaluator = SIDRetrievalEvaluator.from_source("dataset_flickr30k.json", index, split="validation")
    evaluator.attach(trainer)      # or trainer.add_callback(evaluator)
    trainer.train()                # logs eval_t2i_validation_recall@1, ... at the end of every epoch
    evaluator(model, tokenizer)    # {'t2i_validation_recall@1': 0.41, ...}
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from semcore_hf.evaluation.harness import QuerySet, build_query_set, evaluate_retriever

logger = logging.getLogger(__name__)


class SIDRetrievalEvaluator(TrainerCallback):
    """Recall@K / MRR of a SID-generating model on a fixed query set, callable and usable as a `TrainerCallback`.

    Args:
        query_set (`QuerySet`): the queries, their relevant target ids and the gallery (`build_query_set`).
        index (`SIDIndex`): the index holding the gallery's targets (the one the training data was built with).
        k (`Sequence[int]`, *optional*, defaults to `(1, 5, 10)`): the cut-offs.
        name (`str`, *optional*): the metrics' prefix (default: `"{direction}"`); `from_source` adds the split.
        batch_size (`int`, *optional*, defaults to 8): queries per search.
        num_beams (`int`, *optional*), max_num_beams (`int`, *optional*), certify (`int`, *optional*): the search's
            settings (see `SemCORERetriever.retrieve`).
        extension (`SIDTokenizerExtension`, *optional*): the structure tokens (default ones if omitted).
        show_progress (`bool`, *optional*, defaults to `False`): tqdm over batches.

    Example:

    ```python
    >>> evaluator = SIDRetrievalEvaluator(query_set, index, name="t2i_val")
    >>> evaluator(model, tokenizer)["t2i_val_recall@1"]
    0.35
    ```
    """

    def __init__(
        self,
        query_set: QuerySet,
        index: Any,
        k: Sequence[int] = (1, 5, 10),
        name: str | None = None,
        batch_size: int = 8,
        num_beams: int | None = None,
        max_num_beams: int | None = None,
        certify: int | None = None,
        extension: Any = None,
        show_progress: bool = False,
    ) -> None:
        super().__init__()
        if not len(query_set):
            raise ValueError("The query set is empty: the evaluator needs at least one query.")
        self.query_set = query_set
        self.index = index
        self.k = tuple(int(x) for x in k)
        self.name = name if name is not None else query_set.direction
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_num_beams = max_num_beams
        self.certify = certify
        self.extension = extension
        self.show_progress = show_progress
        self.history: list[dict[str, float]] = []
        self._trainer: Any = None

    @classmethod
    def from_source(
        cls,
        source: Any,
        index: Any,
        direction: str | None = None,
        split: str = "validation",
        image_root: str | os.PathLike | None = None,
        max_queries: int | None = None,
        **kwargs: Any,
    ) -> SIDRetrievalEvaluator:
        """An evaluator over `split` of an image-caption source (anything `load_image_caption_source` reads).

        Args:
            source: the source `semcore-hf build-sids` read (Karpathy JSON, image folder, dataset).
            index (`SIDIndex`): the targets' index.
            direction (`str`, *optional*): `"t2i"` or `"i2t"`; read from `index.target_modality` if omitted.
            split (`str`, *optional*, defaults to `"validation"`): never the test split during training.
            image_root (`str`, *optional*): base folder of relative image paths.
            max_queries (`int`, *optional*): only the first N queries (evaluating every epoch should be cheap).
            **kwargs: passed to the constructor (`k`, `batch_size`, `num_beams`, ...).
        """
        from semcore_hf.data import load_image_caption_source

        if direction is None:
            direction = "i2t" if getattr(index, "target_modality", None) == "text" else "t2i"
        check = True if direction == "i2t" else "exists"  # I2T queries are images: decode them now
        rows = load_image_caption_source(source, image_root=image_root, check_images=check)
        query_set = build_query_set(rows, direction, split).head(max_queries)
        kwargs.setdefault("name", f"{direction}_{split}")
        return cls(query_set, index, **kwargs)

    @property
    def primary_metric(self) -> str:
        """The metric that ranks checkpoints: `{name}_recall@{min(k)}`."""
        return f"{self.name}_recall@{min(self.k)}"

    def __call__(
        self,
        model: Any,
        processing_class: Any = None,
        output_path: str | os.PathLike | None = None,
        epoch: float = -1,
        steps: int = -1,
    ) -> dict[str, float]:
        """Retrieve every query with `model` and return the prefixed metrics (`{name}_recall@K`, `{name}_mrr`, ...).

        Args:
            model (`PreTrainedModel`, `PeftModel` or `SemCORERetriever`): the model being evaluated (a retriever is
                used as it is, with its own gallery).
            processing_class (*optional*): the model's tokenizer / processor (not needed for a retriever).
            output_path (`str` or `os.PathLike`, *optional*): a folder; one JSON line per call is appended to
                `{name}_results.jsonl` there.
            epoch (`float`, *optional*), steps (`int`, *optional*): recorded with the metrics.
        """
        from semcore_hf.retrieval import SemCORERetriever

        if isinstance(model, SemCORERetriever):
            retriever, module = model, model.model
        else:
            if processing_class is None:
                raise ValueError("Pass the model's tokenizer / processor (`processing_class`).")
            module = model
            retriever = None
        was_training = module.training
        try:
            if retriever is None:
                retriever = SemCORERetriever(
                    model, processing_class, self.index, extension=self.extension, gallery=self.query_set.gallery
                )
            res = evaluate_retriever(
                retriever,
                self.query_set,
                k=self.k,
                num_beams=self.num_beams,
                batch_size=self.batch_size,
                max_num_beams=self.max_num_beams,
                certify=self.certify,
                show_progress=self.show_progress,
            )
        finally:
            module.train(was_training)
        metrics = {
            f"{self.name}_{key}": float(value)
            for key, value in res["metrics"].items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        self.history.append({**metrics, "epoch": epoch, "steps": steps})
        if output_path is not None:
            path = Path(output_path) / f"{self.name}_results.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(self.history[-1]) + "\n")
        return metrics

    # ------------------------------------------------------------------ TrainerCallback

    def attach(self, trainer: Any) -> SIDRetrievalEvaluator:
        """Add the evaluator to `trainer`'s callbacks and log through `trainer.log` (so Recall@K reaches the
        console, `trainer.state.log_history` and every `report_to` integration). Returns `self`."""
        self._trainer = trainer
        trainer.add_callback(self)
        return self

    def on_epoch_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        """Retrieve the queries with the model as it is at the end of the epoch (main process only)."""
        if not state.is_world_process_zero or model is None:
            return control
        metrics = self(model, processing_class, epoch=state.epoch, steps=state.global_step)
        logged = {f"eval_{key}": value for key, value in metrics.items()}
        if self._trainer is not None:
            self._trainer.log(logged)
        else:
            state.log_history.append({**logged, "epoch": state.epoch, "step": state.global_step})
            logger.info("epoch %s: %s", state.epoch, logged)
        return control
