"""Training: make a base model SID-ready and fine-tune it with TRL's SFTTrainer (recipes in `recipes/`)."""

from semcore_hf.training.config import SIDTrainingArguments
from semcore_hf.training.prepare import prepare_model_for_sids
from semcore_hf.training.recipes import list_recipes, recipe_path
from semcore_hf.training.sft import make_parser, train

__all__ = [
    "SIDTrainingArguments",
    "list_recipes",
    "make_parser",
    "prepare_model_for_sids",
    "recipe_path",
    "train",
]
