"""Damaged model folders (tests/hostile_corpus.py): each is a typed ``ModelLoadError`` naming the
file and the problem, never a hang or a raw exception; through the worker it is a typed ``Failed``
carrying the file, and the next load still works."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.minigpt4.loading import ModelLoadError, load_model
from engine.protocol import ErrorKind, Failed, LoadModel, ModelReady
from tests.hostile_corpus import DEMO_MODEL, damaged_model, model_cases

CASES = model_cases()
pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(("name", "damage", "file"), CASES, ids=[c[0].replace(" ", "-") for c in CASES])
def test_damaged_model_folder_is_a_typed_error_naming_the_file(name, damage, file, tmp_path) -> None:  # noqa: ANN001
    marker = Path("/tmp/lumen-hostile-pickle-ran")
    marker.unlink(missing_ok=True)
    model = damaged_model(tmp_path, damage)
    with pytest.raises(ModelLoadError) as err:
        load_model(model, device="cpu")
    assert err.value.kind in (ErrorKind.MODEL_MISMATCH, ErrorKind.MODEL_MISSING), err.value
    assert err.value.path is not None and Path(err.value.path).name == file, (err.value.path, str(err.value))
    assert file in str(err.value)
    assert not marker.exists()  # the pickle payload was never executed


def test_worker_reports_a_damaged_model_with_its_file_then_loads_a_good_one(tmp_path) -> None:  # noqa: ANN001
    from engine.handle import run_in_thread
    from engine.worker import serve

    handle = run_in_thread(serve)
    try:
        for name, damage, file in CASES:
            folder = tmp_path / name.replace(" ", "-")
            folder.mkdir()
            final = handle.request(LoadModel(str(damaged_model(folder, damage)), device="cpu"), 60)[-1]
            assert isinstance(final, Failed) and final.kind is not ErrorKind.INTERNAL, (name, final)
            assert final.path is not None and Path(final.path).name == file, (name, final)
        assert isinstance(handle.request(LoadModel(str(DEMO_MODEL), device="cpu"), 60)[-1], ModelReady)
    finally:
        handle.stop()
