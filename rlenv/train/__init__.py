"""Training: GRPO (with DAPO / Dr. GRPO variants), pretraining, SFT, distillation and the CLI."""

__all__: list[str] = []
