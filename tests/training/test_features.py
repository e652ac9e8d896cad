"""The feature cache: vision side only, sharded with the captions inside, resumable to the same bytes,
bounded memory at >= 200k samples, read back lazily."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.data import TrainTransform, decode_image, read_annotations
from training.features import FeatureCache, build_cache, projection_inputs
from training.model import load_for_training, load_vision_side
from training.synthetic import make_split

ROOT = Path(__file__).resolve().parents[2]


def test_the_vision_side_alone_gives_the_full_models_features(tiny_model_dir) -> None:
    vision = load_vision_side(tiny_model_dir)
    assert not list(vision.language_model.parameters())  # no LLM built or loaded
    full, _ = load_for_training(tiny_model_dir)
    pixels = torch.randn(2, 3, 56, 56)
    assert torch.equal(projection_inputs(vision, pixels), projection_inputs(full.eval(), pixels))


@pytest.mark.system
def test_an_interrupted_build_resumes_to_the_same_cache(tiny_model_dir, tmp_path) -> None:
    make_split(tmp_path / "aligned", 24, seed=5, size=56)
    folder = tmp_path / "aligned"
    records = read_annotations(folder)
    model = load_vision_side(tiny_model_dir)
    transform = TrainTransform(56, model.config.image_mean, model.config.image_std, "april")
    served: list[int] = []

    def source(start: int, stop_after: int | None = None):
        for pos, rec in enumerate(records[start:], start + 1):
            if stop_after is not None and len(served) == stop_after:
                raise KeyboardInterrupt  # the build is killed
            served.append(pos)
            yield pos, decode_image((folder / "image" / f"{rec['image_id']}.jpg").read_bytes()), rec["caption"]

    kw = dict(views=2, seed=3, batch_size=4, shard_size=5)
    build_cache(model, source, transform, tmp_path / "full", **kw)
    served.clear()
    with pytest.raises(KeyboardInterrupt):
        build_cache(model, lambda s: source(s, stop_after=13), transform, tmp_path / "part", **kw)
    assert sorted(p.name for p in (tmp_path / "part").iterdir()) == ["shard-000000.safetensors",
                                                                      "shard-000001.safetensors"]
    served.clear()
    build_cache(model, source, transform, tmp_path / "part", **kw)
    assert served[0] == 11 and len(served) == 14  # resumed after the 10 samples of the complete shards
    files = sorted(p.name for p in (tmp_path / "full").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "part").iterdir()) and len(files) == 6  # 5 shards + index
    assert json.loads((tmp_path / "full" / "index.json").read_text()) == json.loads(
        (tmp_path / "part" / "index.json").read_text())
    for name in files[1:]:  # the shards (after index.json)
        a, b = load_file(str(tmp_path / "full" / name)), load_file(str(tmp_path / "part" / name))
        assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    cache = FeatureCache(tmp_path / "part", seed=0)
    assert len(cache) == 24 and cache.shape == [24, 2, 8, 48]
    assert [cache[(0, i)]["caption"] for i in range(24)] == [r["caption"] for r in records]


_BIG = """
import json, resource, sys, torch
from training.features import CacheWriter, FeatureCache
n, out = int(sys.argv[1]), sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
w = CacheWriter(out, views=1, model_name="tiny")
for start in range(0, n, 1000):
    k = min(1000, n - start)
    ids = torch.arange(start, start + k, dtype=torch.float32)
    feats = (ids % 2048).view(k, 1, 1, 1).expand(k, 1, 8, 48)
    w.add(feats, [f"caption number {i:07d} of a picture of a dog that runs along a beach at dusk." for i in
                  range(start, start + k)], list(range(start + 1, start + k + 1)))
w.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cache = FeatureCache(out, seed=0)
item = cache[(0, n - 7)]
print(json.dumps({"grew_kb": peak - base, "len": len(cache), "caption": item["caption"],
                  "value": item["features"][0, 0].item()}))
"""


@pytest.mark.system
def test_a_200k_sample_cache_is_built_in_bounded_memory(tmp_path) -> None:
    n = 200_000  # 150 MB of features and 17 MB of captions: kept in RAM by the old builder
    proc = subprocess.run([sys.executable, "-c", _BIG, str(n), str(tmp_path / "big")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["len"] == n and result["value"] == (n - 7) % 2048
    assert result["caption"] == f"caption number {n - 7:07d} of a picture of a dog that runs along a beach at dusk."
    assert result["grew_kb"] < 48 * 1024, result  # one 4096-sample shard (~6 MB) in flight, not the cache
    assert len(list((tmp_path / "big").glob("shard-*.safetensors"))) == -(-n // 4096)
