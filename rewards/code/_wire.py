"""Wire formats of the sandbox: strict plain-value encoding and length-prefixed frames over pipes.

Key idea: a value crossing from the sandboxed program to the trusted judge is *data*, never an object. The
encoder accepts only exact builtin types (``type(x) is int``, never a subclass), so an object whose ``__eq__``
always returns True, a ``str`` subclass or a proxy cannot be encoded at all; the decoder (``json`` plus a
tag check) rebuilds fresh builtin objects in the judge's pristine process. Tagged JSON keeps the distinctions
JSON loses (tuple vs list, set, bytes, complex, non-string dict keys, big integers without the 4300-digit
limit).

Frames are ``4-byte big-endian length + UTF-8 JSON`` written with ``os.write`` / read with ``os.read``, which
raise no audit events, so they keep working under the child's audit hook.

Left out: arbitrary objects, generators and iterators (a program returning one fails the test; see
docs/sandbox.md), shared references and cycles (values are trees; cycles hit the depth limit).
"""

from __future__ import annotations

import base64
import json
import os
import select
import time
from typing import Any

__all__ = ["WireError", "decode", "encode", "read_frame", "write_frame"]

MAX_DEPTH = 100
_ENCODER = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps with options builds one per call
SMALL_INT = 1 << 53


class WireError(ValueError):
    """A value cannot be encoded, or a frame is malformed, too large or late."""


def _enc(value: Any, depth: int, ref: Any = None) -> Any:  # noqa: C901 - one branch per type
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply (or cyclic)")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -SMALL_INT < value < SMALL_INT else ["I", format(value, "x")]
    if kind is float:
        return ["R", float.hex(value)]
    if kind is list:
        return ["L", [_enc(v, depth + 1, ref) for v in value]]
    if kind is tuple:
        return ["T", [_enc(v, depth + 1, ref) for v in value]]
    if kind is dict:
        return ["D", [[_enc(k, depth + 1, ref), _enc(v, depth + 1, ref)] for k, v in value.items()]]
    if kind is set:
        return ["S", [_enc(v, depth + 1, ref) for v in value]]
    if kind is frozenset:
        return ["F", [_enc(v, depth + 1, ref) for v in value]]
    if kind is bytes:
        return ["B", base64.b64encode(value).decode("ascii")]
    if kind is complex:
        return ["C", float.hex(value.real), float.hex(value.imag)]
    handle = ref(value) if ref is not None else None
    if handle is not None:
        return ["O", handle]
    raise WireError(f"values of type {kind.__name__!r} cannot leave the sandbox (only plain builtins)")


def encode(value: Any, ref: Any = None) -> Any:
    """Encodes a plain builtin value as JSON-able tagged data.

    Args:
        value: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, or a ``list`` /
            ``tuple`` / ``dict`` / ``set`` / ``frozenset`` of those, with exact types (no subclasses).
        ref: Judge to child only: called with any other object; a non-None result is sent as a reference
            to an object living in the child (a program object the test passes back, e.g. in a list).

    Returns:
        JSON-serialisable data that :func:`decode` turns back into an equal value of the same types.

    Raises:
        WireError: For any other type, a subclass of a builtin, or nesting deeper than 100.

    Example:
        >>> decode(encode({(1, 2): [1.5, b"x", None]}))
        {(1, 2): [1.5, b'x', None]}
    """
    return _enc(value, 0, ref)


def _items(data: Any, depth: int, resolve: Any = None) -> list[Any]:
    if type(data) is not list:
        raise WireError("malformed container")
    return [_dec(v, depth + 1, resolve) for v in data]


def _dec(data: Any, depth: int, resolve: Any = None) -> Any:  # noqa: C901 - mirror of _enc
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    kind = type(data)
    if data is None or kind is bool or kind is str or kind is int:
        return data
    if kind is not list or not data or type(data[0]) is not str:
        raise WireError(f"malformed value of JSON type {kind.__name__}")
    tag, rest = data[0], data[1:]
    try:
        if tag == "I" and len(rest) == 1:
            return int(rest[0], 16)
        if tag == "R" and len(rest) == 1:
            return float.fromhex(rest[0])
        if tag == "C" and len(rest) == 2:
            return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
        if tag == "O" and len(rest) == 1 and resolve is not None:
            return resolve(rest[0])
        if tag == "B" and len(rest) == 1:
            return base64.b64decode(rest[0], validate=True)
        if len(rest) != 1:
            raise WireError(f"malformed value tag {tag!r}")
        if tag == "L":
            return _items(rest[0], depth, resolve)
        if tag == "T":
            return tuple(_items(rest[0], depth, resolve))
        if tag == "S":
            return set(_items(rest[0], depth, resolve))
        if tag == "F":
            return frozenset(_items(rest[0], depth, resolve))
        if tag == "D":
            if type(rest[0]) is not list or any(type(p) is not list or len(p) != 2 for p in rest[0]):
                raise WireError("malformed dict items")
            return {_dec(k, depth + 1, resolve): _dec(v, depth + 1, resolve) for k, v in rest[0]}
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"malformed {tag!r} value: {exc}") from None
    raise WireError(f"unknown value tag {tag!r}")


def decode(data: Any, resolve: Any = None) -> Any:
    """Rebuilds a value from :func:`encode`'s output, validating every tag (the inverse of :func:`encode`).

    ``resolve`` (the child only) turns a reference made by ``encode(..., ref=...)`` back into its object;
    without it a reference is malformed data (the judge never accepts one from the child).

    Raises:
        WireError: On anything :func:`encode` could not have produced (including unhashable set items).

    Example:
        >>> decode(["T", [1, ["R", "0x1.8000000000000p+0"]]])
        (1, 1.5)
    """
    return _dec(data, 0, resolve)


def write_frame(fd: int, message: Any) -> None:
    """Writes one JSON message as a length-prefixed frame (blocking)."""
    payload = _ENCODER.encode(message).encode()
    data = len(payload).to_bytes(4, "big") + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("no reply in time")
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, *, max_bytes: int, deadline: float | None = None) -> Any:
    """Reads one frame written by :func:`write_frame`.

    Args:
        fd: A readable pipe.
        max_bytes: Frames announcing more than this raise instead of being buffered.
        deadline: ``time.monotonic()`` value after which ``TimeoutError`` is raised; ``None`` waits forever.

    Raises:
        EOFError: The writer closed the pipe. TimeoutError: The deadline passed.
        WireError: The frame is too large or not JSON.
    """
    size = int.from_bytes(_read_exact(fd, 4, deadline), "big")
    if size > max_bytes:
        raise WireError(f"frame of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        return json.loads(_read_exact(fd, size, deadline))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, int digit limit
        raise WireError(f"malformed frame: {exc}") from None
