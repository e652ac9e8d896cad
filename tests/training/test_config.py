from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from training import config
from training.config import ConfigError, TrainConfig


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return parser.parse_args(argv)


def test_presets_hold_the_official_values() -> None:
    s1, s2, paper = config.stage1(), config.stage2(), config.stage2_paper()
    assert (s1.batch_size, s1.max_epoch, s1.iters_per_epoch, s1.max_txt_len) == (64, 4, 5000, 32)
    assert (s1.init_lr, s1.min_lr, s1.warmup_lr, s1.warmup_steps) == (1e-4, 8e-5, 1e-6, 5000)
    assert s1.sample_ratios == (115, 14) and not s1.use_prompts and s1.resolved_end_sym("vicuna0") == "\n"
    assert (s2.batch_size, s2.max_epoch, s2.iters_per_epoch, s2.max_txt_len) == (12, 5, 200, 160)
    assert (s2.init_lr, s2.min_lr, s2.warmup_lr, s2.warmup_steps) == (3e-5, 1e-5, 1e-6, 200)
    assert s2.resolved_end_sym("vicuna0") == "###" and s2.resolved_end_sym("llama2") == "</s>"
    assert s1.weight_decay == s2.weight_decay == 0.05 and s2.trainable == ("language_projection",)
    assert paper.total_steps == 400 and s2.total_steps == 1000 and s1.total_steps == 20000


def test_cli_overrides_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('batch_size = 4\nsample_ratios = [3, 1]\noutput_dir = "x"\n')
    cfg = config.from_args("stage1", _parse(["--config", str(toml), "--batch_size=8",
                                             "--trainable=language_projection,qformer",
                                             "--tensorboard=false", "--init_lr=2e-4"]))
    assert cfg.batch_size == 8 and cfg.sample_ratios == (3, 1) and cfg.output_dir == "x"
    assert cfg.trainable == ("language_projection", "qformer") and cfg.tensorboard is False
    assert cfg.init_lr == 2e-4 and cfg.max_epoch == 4  # untouched preset value


def test_bad_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        config.from_args("stage2", _parse(["--batch_size=0", "--mixed_precision=fp8", "--trainable=llm"])).validate()
    text = str(err.value)
    assert "batch_size" in text and "mixed_precision" in text and "trainable" in text and "model_dir" in text
    with pytest.raises(ConfigError, match="true/false"):
        config.from_args("stage2", _parse(["--tensorboard=maybe"]))
    with pytest.raises(ConfigError, match="unknown"):
        TrainConfig.from_dict({"batchsize": 3})


def test_validate_checks_paths(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "lumen_model.json").write_text("{}")
    cfg = config.stage2(model_dir=str(model), aligned_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="filter_cap.json"):
        cfg.validate()
    (tmp_path / "filter_cap.json").write_text('{"annotations": []}')
    assert cfg.validate() is cfg
    with pytest.raises(ConfigError, match="laion_shards"):
        config.stage1(model_dir=str(model)).validate()


def test_resolved_config_round_trips_through_json(tmp_path: Path) -> None:
    cfg = config.stage1(batch_size=3, trainable=("language_projection", "language_model"))
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg
    assert json.loads((tmp_path / "c.json").read_text())["sample_ratios"] == [115, 14]
