"""The environment classes, one per module; registered as ``rlenv/<Name>-v0`` by ``import rlenv``."""
