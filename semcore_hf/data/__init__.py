"""Training data: image-caption sources with SIDs attached, emitted as TRL prompt-completion splits per task."""

from semcore_hf.data.builder import SIDDatasetBuilder, SIDDatasetConfig, build_sid_dataset, task_features
from semcore_hf.data.hub import load_sid_dataset, push_sid_dataset_to_hub, save_sid_dataset
from semcore_hf.data.pseudo_queries import generate_pseudo_queries
from semcore_hf.data.sources import i2t_targets, load_image_caption_source, t2i_targets

__all__ = [
    "SIDDatasetBuilder",
    "SIDDatasetConfig",
    "build_sid_dataset",
    "generate_pseudo_queries",
    "i2t_targets",
    "load_image_caption_source",
    "load_sid_dataset",
    "push_sid_dataset_to_hub",
    "save_sid_dataset",
    "t2i_targets",
    "task_features",
]
