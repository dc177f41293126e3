"""Files a training run writes, each replaced atomically: written to a temporary file in the same
folder, then moved over the old one with ``os.replace``, so an interruption leaves the old file or the
new one, never half of one.

>>> import tempfile, torch
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> path = save_checkpoint(folder / "checkpoint.pt", {"epoch": 3, "w": torch.ones(2)})
>>> load_checkpoint(path)["epoch"], sorted(p.name for p in folder.iterdir())
(3, ['checkpoint.pt'])
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from descent._errors import invalid

_COUNTER = itertools.count()


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it onto ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{next(_COUNTER)}.tmp")
    try:
        with temporary.open("xb") as stream:  # the umask's permissions, as any other file
            write(stream)
        os.replace(temporary, path)
    except BaseException:  # Ctrl-C included: no stray temporary file
        temporary.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """``torch.save(payload)`` to ``path`` atomically (tensors, numbers, strings, lists and dicts)."""
    return atomic_write(path, lambda stream: torch.save(payload, stream))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A payload ``save_checkpoint`` wrote, loaded with ``weights_only=True`` onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise invalid("resume", str(path), "a checkpoint.pt written by an earlier run (no such file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a file torch cannot read: named by its path, in one line
        reason = " ".join(str(error).split())[:200]
        raise invalid("resume", str(path), f"a checkpoint.pt written by descent train ({reason})") from None
