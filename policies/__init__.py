"""The bundled policy: a small DeepSeek-V3-style decoder."""

__all__: list[str] = []
