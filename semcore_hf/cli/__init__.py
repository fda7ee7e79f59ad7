"""Command-line interface: `semcore-hf build-sids / train / retrieve / evaluate / demo`."""

from semcore_hf.cli.main import main

__all__ = ["main"]
