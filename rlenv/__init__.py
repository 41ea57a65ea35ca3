"""Gymnasium environments for LLM reasoning tasks (countdown, math, code)."""

__all__: list[str] = []
