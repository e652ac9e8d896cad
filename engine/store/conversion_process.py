"""Run the checkpoint converter (torch) in a spawned process, so the desktop never imports torch,
a converter crash cannot take the app down, and Cancel can end it at once. Spawn works the same
from source and from the frozen installers (``multiprocessing.freeze_support`` in the entry point).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from engine.store.catalogue import ModelSpec
from engine.store.downloads import DownloadError, FailureKind
from engine.store.official_files import OfficialFiles

log = logging.getLogger(__name__)


def default_converter(*, preset: str, eva: Path | None, qformer: Path | None, projection: Path, llm_dir: Path, out_dir: Path) -> None:
    """The engine's converter (engine.minigpt4.converter), imported in the child only. It checks every
    file's key set and tensor shapes and raises CheckpointError naming the wrong file."""
    from engine.minigpt4 import converter, config

    report = converter.convert_official(
        Path(out_dir),
        config=getattr(config, preset)(),
        eva_vit=eva,
        projection=projection,
        llm_dir=llm_dir,
        blip2=qformer,
        overwrite=True,
    )
    log.info("conversion report:\n%s", report.summary())


def _child(conn: Connection, converter: Callable[..., object], kwargs: dict) -> None:
    try:
        converter(**kwargs)
        conn.send(("ok", ""))
    except BaseException as exc:  # report everything, including MemoryError
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def run_conversion(
    spec: ModelSpec,
    official: OfficialFiles,
    out_dir: Path,
    cancel: threading.Event,
    converter: Callable[..., object] | None = None,
    preset: str | None = None,
) -> None:
    """Block until the converter finished; raise DownloadError(CONVERSION or CANCELLED)."""
    assert official.projection is not None and official.llm_dir is not None
    kwargs = dict(
        preset=preset or spec.preset,
        eva=official.eva,
        qformer=official.qformer if spec.has_qformer else None,
        projection=official.projection,
        llm_dir=official.llm_dir,
        out_dir=out_dir,
    )
    run_in_process(converter or default_converter, kwargs, cancel, out_dir)


def run_in_process(function: Callable[..., object], kwargs: dict, cancel: threading.Event, out_dir: Path) -> None:
    """Run ``function(**kwargs)`` in a spawned process; raise DownloadError(CONVERSION or CANCELLED)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(child, function, kwargs), daemon=True)
    process.start()
    child.close()
    try:
        while True:
            if cancel.is_set():
                process.terminate()
                raise DownloadError(FailureKind.CANCELLED, "conversion cancelled", str(out_dir))
            if parent.poll(0.2):
                try:
                    status, detail = parent.recv()
                except EOFError:  # the child died (native crash, killed for memory)
                    process.join(timeout=5)
                    status, detail = "error", f"converter process died (exit code {process.exitcode})"
                break
            if not process.is_alive() and not parent.poll(0):
                status, detail = "error", f"converter process died (exit code {process.exitcode})"
                break
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
        parent.close()
    if status != "ok":
        log.error("conversion failed: %s", detail)
        raise DownloadError(FailureKind.CONVERSION, detail.splitlines()[0] if detail else "failed", str(out_dir))
