"""Retrieval: constrained beam search over SIDs, SID -> targets, optional GSV re-ranking."""

from semcore_hf.retrieval.retriever import SemCORERetriever

__all__ = ["SemCORERetriever"]
