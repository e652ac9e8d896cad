"""Stage-1 shards (prepare -> shard stream), mixing, crops, the resumable sampler."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from training.data import EpochBatchSampler, MixedBatches, TrainTransform, random_resized_crop_box
from training.prepare import iter_pairs, prepare_shards, resize, shard_pattern

TRANSFORM = TrainTransform(56, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "april")


def _folder(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (80 + i, 60), (10 * i, 0, 0)).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(f"A Red (square) number {i}!")
    return folder


def test_prepare_then_stream_cleans_captions_and_counts_bad_samples(tmp_path) -> None:
    folder = _folder(tmp_path, 7)
    (folder / "img3.png").write_bytes(b"broken")  # unreadable: skipped at prepare time
    (folder / "img5.txt").write_text("   ")  # empty caption: skipped
    report = prepare_shards(folder, tmp_path / "shards", image_size=32, samples_per_shard=2)
    assert (report.written, report.skipped) == (5, 2) and len(report.shards) == 3
    import tarfile

    with tarfile.open(tmp_path / "shards" / report.shards[0]) as tar:  # sneak a corrupt jpg into a shard
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    key = sorted(members)[0].split(".")[0]
    with tarfile.open(tmp_path / "shards" / report.shards[0], "w") as tar:
        for name, data in members.items():
            import io

            data = b"corrupt" if name == f"{key}.jpg" else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    from webdataset.shardlists import expand_urls

    from training.shards import StreamSpec, _Stream

    spec = StreamSpec(tuple(expand_urls(shard_pattern(tmp_path / "shards"))), TRANSFORM, batch_size=4,
                      shuffle_buffer=10, seed=0, generation=0, source=0, rank=0)
    stream = _Stream(spec, 0, 0)
    batches = [stream.batch() for _ in range(6)]
    assert all(b.pixel_values.shape == (4, 3, 56, 56) for b in batches)
    captions = {c for b in batches for c in b.captions}
    assert captions <= {f"a red square number {i}" for i in range(7)} and len(captions) >= 3
    assert sum(b.skipped for b in batches) >= 1  # the corrupt member was met (resampling) and counted


def test_caption_lists_and_resize_modes(tmp_path) -> None:
    Image.new("RGB", (40, 20), "white").save(tmp_path / "a.jpg")
    (tmp_path / "list.jsonl").write_text(json.dumps({"image": "a.jpg", "caption": "x"}) + "\n")
    (tmp_path / "list.tsv").write_text("a.jpg\ty\n")
    assert list(iter_pairs(tmp_path / "list.jsonl")) == [(tmp_path / "a.jpg", "x")]
    assert list(iter_pairs(tmp_path / "list.tsv")) == [(tmp_path / "a.jpg", "y")]
    img = Image.new("RGB", (40, 20), "white")
    border = resize(img, 32, "border")
    assert border.size == (32, 32) and border.getpixel((16, 2)) == (0, 0, 0)  # black border, aspect kept
    assert resize(img, 32, "center_crop").getpixel((16, 2)) == (255, 255, 255)


def test_whole_batch_mixing_follows_115_to_14() -> None:
    def source(tag: str):
        while True:
            yield tag

    mixed = MixedBatches([source("laion"), source("ccsbu")], (115, 14), seed=0)
    draws = [next(mixed) for _ in range(20000)]
    frac = draws.count("ccsbu") / len(draws)
    assert abs(frac - 14 / 129) < 4 * math.sqrt(14 / 129 * 115 / 129 / len(draws))
    again = MixedBatches([source("laion"), source("ccsbu")], (115, 14), seed=0, start_step=500)
    assert [next(again) for _ in range(100)] == draws[500:600]  # a resumed run chooses the same


def test_each_rank_draws_its_own_source_as_the_official_loader() -> None:
    """Official ``MultiIterLoader`` uses the per-GPU RNG (seed + rank): ranks differ within one step."""
    def source(tag: str):
        while True:
            yield tag

    ranks = [MixedBatches([source("laion"), source("ccsbu")], (1, 1), seed=0, rank=r) for r in (0, 1)]
    draws = [(next(ranks[0]), next(ranks[1])) for _ in range(200)]
    assert any(a != b for a, b in draws) and any(a == b for a, b in draws)


def test_random_resized_crop_box_follows_torchvision_rules() -> None:
    rng = random.Random(0)
    for _ in range(500):
        w, h = rng.randint(30, 300), rng.randint(30, 300)
        left, top, cw, ch = random_resized_crop_box(w, h, rng)
        assert 0 <= left and left + cw <= w and 0 <= top and top + ch <= h
        if (cw, ch) != (w, h) and cw < w and ch < h:
            assert 0.5 * w * h * 0.9 <= cw * ch <= w * h and 3 / 4 * 0.9 <= cw / ch <= 4 / 3 * 1.1
    assert random_resized_crop_box(1000, 10, random.Random(0)) == (493, 0, 13, 10)  # centre-crop fallback


def test_sampler_shards_ranks_and_resumes_anywhere() -> None:
    a = EpochBatchSampler(10, 2, seed=1, rank=0, world=2)
    b = EpochBatchSampler(10, 2, seed=1, rank=1, world=2)
    first = [i for batch in a.pass_batches(0) for _, i in batch]
    second = [i for batch in b.pass_batches(0) for _, i in batch]
    assert not set(first) & set(second) and len(first) == len(second) == 4
    it = iter(a)
    stream = [next(it) for _ in range(7)]
    resumed = iter(EpochBatchSampler(10, 2, seed=1, rank=0, world=2, start_batch=3))
    assert [next(resumed) for _ in range(4)] == stream[3:]
    assert stream[2][0][0] == 1  # batch 3 starts pass 1 (2 full batches per pass on this rank)
    with pytest.raises(ValueError):
        EpochBatchSampler(3, 4, seed=0)


def test_transform_is_seeded_per_sample() -> None:
    img = Image.new("RGB", (90, 70))
    img.paste((255, 0, 0), (0, 0, 45, 70))
    x1 = TRANSFORM(img, random.Random(5))
    assert torch.equal(x1, TRANSFORM(img, random.Random(5)))
    assert not torch.equal(x1, TRANSFORM(img, random.Random(6)))
    plain = TrainTransform(56, (0.5,) * 3, (0.5,) * 3, "current")
    assert torch.equal(plain(img, random.Random(1)), plain(img, random.Random(2)))


def test_missing_training_extra_is_named(monkeypatch) -> None:
    import sys

    from training.data import require

    monkeypatch.setitem(sys.modules, "webdataset", None)  # makes `import webdataset` fail
    with pytest.raises(ImportError, match=r"lumen-assistant\[train\]"):
        require("webdataset")
