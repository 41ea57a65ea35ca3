"""Entry point of a sympy worker process (see :mod:`rewards.math.pool`): JSON lines in, verdicts out.

Each request line is ``[gold, pred, rel_tol]``; each reply is ``[value, reason]``. The worker imports sympy
once, caps its own address space so a blow-up fails with ``MemoryError`` instead of swapping, keeps the real
stdout for replies only (anything printed goes to stderr), and exits on EOF, which is also what happens when
the parent dies. EOF is seen only between samples, so a thread also ends the worker within about a second
of the parent's death in the middle of one (no one would stop a runaway sample then).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

_MEMORY_LIMIT_BYTES = 3 * 1024**3


def _limit_memory() -> None:
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(hard, _MEMORY_LIMIT_BYTES)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - platform without RLIMIT_AS
        pass


def _exit_with(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:  # reparented once the parent is gone
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    """Serves requests until stdin closes or the parent (``sys.argv[2]``, when given) dies."""
    _exit_with(int(sys.argv[2]) if len(sys.argv) > 2 else os.getppid())
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    _limit_memory()
    from rewards.math.symbolic import SympyComparator
    from rewards.math.verify import check

    comparators: dict[float, SympyComparator] = {}
    out.write(json.dumps("ready") + "\n")
    for line in sys.stdin:
        gold, pred, rel_tol = json.loads(line)
        cmp = comparators.setdefault(rel_tol, SympyComparator(rel_tol))
        try:
            value, reason = check(gold, pred, cmp)
        except MemoryError:
            value, reason = False, "too_large"
        except RecursionError:
            value, reason = False, "too_deep"
        except Exception as exc:  # sympy raises many kinds on odd input; a wrong answer, never a crash
            value, reason = False, f"sympy_error:{type(exc).__name__}"
        out.write(
            json.dumps(
                [bool(value) if value is not None else False, reason if value is not None else "undecided"]
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
