"""The stage-1 shard stream resumes exactly: per rank, per source, per logical stream, through
shuffle buffers, bad samples and a truncated shard, with 2, 1 or 0 DataLoader workers; skipping
decodes nothing; a checkpoint without the stream state visibly does not replay the same samples."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from webdataset.shardlists import expand_urls

from training import config, shards
from training.data import TrainTransform
from training.shards import ShardBatches, StreamSpec, _Stream

TRANSFORM = TrainTransform(32, (0.5,) * 3, (0.5,) * 3, "april")  # random crops: resume must replay them too


def _cfg(patterns: dict[str, str], **kw) -> config.TrainConfig:
    base = dict(laion_shards=patterns["laion"], ccsbu_shards=patterns["ccsbu"], sample_ratios=(2, 1),
                batch_size=3, shuffle_buffer=4, num_workers=2, seed=5)
    return config.stage1(**{**base, **kw})


def _take(stream, n: int) -> list:
    return [next(stream) for _ in range(n)]


def _assert_same(got: list, want: list) -> None:
    assert [b.keys for b in got] == [b.keys for b in want]
    assert [(b.skipped, b.origin, b.captions) for b in got] == [(b.skipped, b.origin, b.captions) for b in want]
    assert all(torch.equal(a.pixel_values, b.pixel_values) for a, b in zip(got, want))  # same crops


@pytest.mark.system
def test_each_rank_resumes_exactly_with_any_worker_count(stage1_shards) -> None:
    cfg = _cfg(stage1_shards)
    seen = {}
    for rank in (0, 1):
        full = ShardBatches(cfg, TRANSFORM, rank, 2, 0)
        head = _take(full, 7)
        state = full.state()
        tail = _take(full, 8)
        assert state["layout"] == 2 and [s["batches"] for s in state["sources"]] != [7, 0]  # both sources used
        for workers in (2, 1, 0):  # the 2 logical streams replayed by 2 workers, 1 worker, in-process
            resumed = ShardBatches(dataclasses.replace(cfg, num_workers=workers), TRANSFORM, rank, 2, 7, state)
            _assert_same(_take(resumed, 8), tail)
            assert resumed.state() == full.state()
        # bad samples are counted exactly once: every raw sample taken is either in a batch or skipped
        final = full.state()
        raw = sum(sum(s["consumed"]) for s in final["sources"])
        assert sum(b.skipped for b in head + tail) == raw - 3 * 15 > 0
        seen[rank] = [k for b in head + tail for k in b.keys]
    assert seen[0] != seen[1]  # ranks draw their own streams


def test_without_the_saved_state_the_batches_differ(stage1_shards, caplog) -> None:
    cfg = _cfg(stage1_shards, num_workers=0)
    full = ShardBatches(cfg, TRANSFORM, 0, 1, 0)
    _take(full, 7)
    state = full.state()
    tail = [b.keys for b in _take(full, 8)]
    exact = ShardBatches(cfg, TRANSFORM, 0, 1, 7, state)
    assert [b.keys for b in _take(exact, 8)] == tail
    with caplog.at_level(logging.WARNING, logger="training.shards"):
        fresh = ShardBatches(cfg, TRANSFORM, 0, 1, 7, None)
        assert [b.keys for b in _take(fresh, 8)] != tail
        assert fresh.state()["generation"] == 7  # a later resume of this run replays its fresh streams
        other_world = ShardBatches(cfg, TRANSFORM, 0, 2, 7, state)
        assert [b.keys for b in _take(other_world, 8)] != tail
    assert "no data state for rank 0" in caplog.text and "saved by 1 process(es), this run has 2" in caplog.text


def _spec(urls: tuple[str, ...]) -> StreamSpec:
    return StreamSpec(urls, TRANSFORM, batch_size=3, shuffle_buffer=4, seed=1, generation=0, source=0, rank=0)


def test_skipping_decodes_nothing_and_reads_back_only_the_buffer(stage1_shards, monkeypatch) -> None:
    spec = _spec(tuple(expand_urls(stage1_shards["laion"])))
    first = _Stream(spec, 0, 0)
    batches = [first.batch() for _ in range(8)]
    position = batches[4].origin[1]
    decoded, reads = [], []
    real_decode, real_read = shards.decode_image, shards._Ref.read
    monkeypatch.setattr(shards, "decode_image", lambda data: decoded.append(1) or real_decode(data))
    monkeypatch.setattr(shards._Ref, "read", lambda self: reads.append(self) or real_read(self))
    again = _Stream(spec, 0, position)
    assert decoded == [] and reads == []  # skipping read tar headers only
    _assert_same([again.batch() for _ in range(3)], batches[5:])
    assert 0 < len({(r.path, r.offset) for r in reads}) <= 4 * 2  # at most the buffered samples' members
    # a non-seekable source (pipe:) reads the bytes while skipping, and gives the same stream
    piped = _spec(tuple(f"pipe:cat {u}" for u in spec.urls))
    piped_stream = _Stream(piped, 0, position)
    _assert_same([piped_stream.batch() for _ in range(3)], batches[5:])
    unshuffled = _Stream(dataclasses.replace(spec, shuffle_buffer=0), 0, 0)  # 0 = no shuffle buffer
    keys = unshuffled.batch().keys
    shard = keys[0].rsplit("-", 1)[0]
    assert keys == (f"{shard}-0", f"{shard}-1", f"{shard}-3")  # in shard order; sample 2 is the corrupt JPEG


def test_a_truncated_shard_is_read_the_same_way_when_skipping(stage1_shards) -> None:
    truncated = expand_urls(stage1_shards["laion"])[3]
    spec = _spec((truncated,))
    first = _Stream(spec, 0, 0)
    batches = [first.batch() for _ in range(9)]
    keys = {k for b in batches for k in b.keys}
    assert "laion-3-5" not in keys and "laion-3-4" in keys  # the cut member ends the shard early
    for k in range(6):  # every resume point: the cut sample is skipped over, or still buffered
        resumed = _Stream(spec, 0, batches[k].origin[1])
        _assert_same([resumed.batch() for _ in range(3)], batches[k + 1:k + 4])


def test_broken_data_stops_with_a_clear_error(tmp_path, monkeypatch) -> None:
    (tmp_path / "0.tar").write_bytes(b"not a tar file at all")
    with pytest.raises(RuntimeError, match="no readable sample in the last 60 shards"):
        _Stream(_spec((str(tmp_path / "0.tar"),)), 0, 0).batch()
    from tests.training.conftest import write_shard

    write_shard(tmp_path / "1.tar", [{"__key__": f"k{i}", "jpg": b"bad", "json": b"{}"} for i in range(5)])
    monkeypatch.setattr(shards, "MAX_BAD_RUN", 40)
    with pytest.raises(RuntimeError, match="40 bad samples in a row"):
        _Stream(_spec((str(tmp_path / "1.tar"),)), 0, 0).batch()
