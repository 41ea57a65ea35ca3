"""Policy tests use tiny models: one intra-op thread is faster than two, and far faster on a shared, loaded
machine (OpenMP threads oversubscribed by other processes spin and stall: 144 s vs 3 s for test_generate)."""

import torch

torch.set_num_threads(1)
