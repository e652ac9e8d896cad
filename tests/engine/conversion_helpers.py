"""Converters for exercising engine.store.conversion_process in a spawned child (must be importable there)."""

from __future__ import annotations

import time
from pathlib import Path


def failing_converter(**kwargs: object) -> None:
    raise ValueError("projection has shape (5120, 768), expected (4096, 768)")


def slow_converter(*, out_dir: Path, **kwargs: object) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    time.sleep(60)


def crashing_converter(**kwargs: object) -> None:
    import os

    os._exit(3)  # a native crash / OOM kill looks like this from the parent
