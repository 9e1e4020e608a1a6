"""Latency Demo: feel what LLM latency does to a conversation."""

__version__ = "0.1.0"
