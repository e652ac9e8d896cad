"""engine.store.model_folder: the one torch-free reader of a model folder's ``llm/config.json``, used
by ``lumen --check``, ``lumen models gguf``, the GGUF conversion and (under MiniGPT4Config) the loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.store.model_folder import LLM_DIR, LLM_KEYS, CheckpointError, read_llm_config, read_llm_json

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_model"


def test_the_demo_models_configuration_is_read_whole_and_as_minigpt4_keeps_it() -> None:
    whole = read_llm_json(DEMO / LLM_DIR)
    assert whole["model_type"] == "llama" and whole["hidden_size"] == 128
    assert whole["head_dim"] == 32 and "rope_parameters" in whole  # kept for the GGUF conversion
    kept = read_llm_config(DEMO / LLM_DIR)
    assert set(kept) <= set(LLM_KEYS) and kept["num_key_value_heads"] == 4 and "head_dim" not in kept


def test_the_torch_side_reads_the_folder_through_it() -> None:
    from engine.minigpt4.converter import read_model_config

    assert read_model_config(DEMO).llm == read_llm_config(DEMO / LLM_DIR)


def copy_of_demo(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    return folder


def test_a_missing_or_garbled_config_is_a_checkpoint_error_naming_the_file(tmp_path: Path) -> None:
    folder = copy_of_demo(tmp_path)
    config = folder / LLM_DIR / "config.json"
    good = json.loads(config.read_text())
    config.write_text('{"model_type": "llama", "hidden_size": ')
    with pytest.raises(CheckpointError) as err:
        read_llm_json(folder / LLM_DIR)
    assert err.value.file == str(config) and err.value.problem.startswith("not valid JSON")
    config.write_text(json.dumps({**good, "hidden_size": 0}))
    with pytest.raises(CheckpointError, match="hidden_size must be a positive whole number"):
        read_llm_json(folder / LLM_DIR)
    config.write_text("[]")
    with pytest.raises(CheckpointError, match="must hold a JSON object"):
        read_llm_json(folder / LLM_DIR)
    config.unlink()
    with pytest.raises(CheckpointError, match="config.json missing"):
        read_llm_config(folder / LLM_DIR)


def test_a_missing_num_key_value_heads_means_one_per_attention_head(tmp_path: Path) -> None:
    folder = copy_of_demo(tmp_path)
    config = folder / LLM_DIR / "config.json"
    data = json.loads(config.read_text())
    del data["num_key_value_heads"]
    config.write_text(json.dumps(data))
    assert read_llm_json(folder / LLM_DIR)["num_key_value_heads"] == data["num_attention_heads"]
