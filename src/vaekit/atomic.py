"""One atomic writer: data goes to a temporary file beside the target, then a rename replaces the target.

A crash never leaves a half-written file, an old file is replaced only by a complete new one, and a
failed write leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp_path)`` writes the data; then ``tmp_path`` is renamed to ``path``."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")  # keeps the suffix: np.save would add one
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
