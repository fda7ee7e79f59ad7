"""Generative Semantic Verification: the MLLM scores (query, candidate) pairs by its yes/no log-odds."""

from semcore_hf.verification.gsv import GSVScorer

__all__ = ["GSVScorer"]
