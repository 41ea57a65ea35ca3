"""The bundled policy: a small DeepSeek-V3-style decoder (MLA, DeepSeekMoE, MTP) with fast generation.

Public names are listed in ``__all__``; ``policies.hf`` (transformers wrapper) and ``policies.fp8`` are
imported on demand so ``import policies`` needs only torch.
"""

from policies.cache import KVCache
from policies.config import ModelConfig
from policies.generate import GenerationOutput, generate, left_pad, stack_routing
from policies.io import count_parameters, load_model, save_model
from policies.model import Transformer, TransformerOutput
from policies.mtp import mtp_loss
from policies.speculative import SpeculativeOutput, speculative_generate
from policies.tokenizer import SPECIAL_TOKENS, Tokenizer

__all__ = [
    "SPECIAL_TOKENS",
    "GenerationOutput",
    "KVCache",
    "ModelConfig",
    "SpeculativeOutput",
    "Tokenizer",
    "Transformer",
    "TransformerOutput",
    "convert_to_fp8",
    "count_parameters",
    "generate",
    "left_pad",
    "load_model",
    "mtp_loss",
    "save_model",
    "speculative_generate",
    "stack_routing",
]


def __getattr__(name: str):
    if name == "convert_to_fp8":  # owned by policies.fp8 (helper F); imported lazily
        from policies.fp8 import convert_to_fp8

        return convert_to_fp8
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
