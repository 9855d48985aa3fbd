"""Targets run forward passes: the simulated wafer, the Cerebras API, OpenAI-compatible servers."""
