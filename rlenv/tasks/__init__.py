"""Task sources: procedural generators (countdown, math, code) and offline data-set loaders.

Every generated item is a pure function of (family, seed, split, index); see :mod:`rlenv.tasks._seeding`.
"""
