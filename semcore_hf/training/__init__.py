"""Training: make a base model SID-ready and fine-tune it with TRL's SFTTrainer (recipes in `recipes/`)."""

from semcore_hf.training.config import SIDTrainingArguments
from semcore_hf.training.prepare import detect_model_kind, load_model_and_processor, prepare_model_for_sids
from semcore_hf.training.sft import make_parser, train

__all__ = [
    "SIDTrainingArguments",
    "detect_model_kind",
    "load_model_and_processor",
    "make_parser",
    "prepare_model_for_sids",
    "train",
]
