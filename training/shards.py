"""Stage-1 webdataset shards as a batch stream that resumes exactly.

Official behaviour kept (docs/minigpt4-reference.md sections 10, 11): shards are drawn with replacement forever, a
shuffle buffer (1000) mixes their samples, a sample is ``<key>.jpg`` + ``<key>.json['caption']``
(or ``.txt``), broken samples are skipped. The official pipeline (``wds.ResampledShards`` +
``wds.shuffle``) seeds itself per process, so a restarted run cannot see the same samples again.
Here every part of a rank's stream is a pure function of its coordinates:

* each source (LAION, CC/SBU) of a rank is ``L`` *logical streams* (``L`` = ``num_workers`` of the
  run that started, at least 1). Logical stream ``l`` draws shards with
  ``sample_rng(seed, -2, generation, source, rank, l)``, shuffles with ``sample_rng(seed, -3, ...)``
  and crops its ``n``-th raw sample with ``sample_rng(seed, generation, source, rank, l, n)``;
* batch ``b`` of a source comes from logical stream ``b % L``. DataLoader worker ``p`` of ``P``
  serves streams ``p, p + P, ...`` in turn and the DataLoader takes batches from its workers round
  robin, so any ``P`` that divides ``L`` (``P = 1``: in-process) yields the same batches in the same
  order;
* every batch carries ``origin = (l, n)``: stream ``l`` had taken ``n`` raw samples (good and bad)
  out of its shuffle buffer when the batch was complete. The main process keeps the latest ``n`` of
  each stream and the batch count of each source (``ShardBatches.state()``, saved per rank as
  ``data_state_<rank>.json`` in every checkpoint). Batches prefetched by workers but not yet taken
  by the trainer are not counted, so they are produced again after a resume.

Resuming re-creates every logical stream and fast-forwards it by its ``n`` raw samples before
decoding anything; the pending bad-sample count is zero at a batch boundary (a batch ends with a
good sample), so ``Batch.skipped`` and the trainer's total resume consistently. Cost of the skip,
per logical stream (streams of different workers skip in parallel): the tar headers of the
``n`` + ``shuffle_buffer`` samples are parsed again (Python's ``tarfile``, tens of microseconds per
member; decoding and cropping one image costs milliseconds) and the ``n`` samples pass through the
shuffle buffer as references. For local uncompressed ``.tar`` files the member data is seeked over
and only the samples still in the buffer at ``n`` are read back (at most ``shuffle_buffer``); shards
behind ``pipe:``/URLs or compressed tars cannot seek, so their bytes are read once more. No image is
decoded and no caption parsed while skipping.

Without a usable state (a checkpoint from an older trainer, a different number of processes) the
run starts fresh streams (``generation`` = the resume step): the same distribution, not the same
samples; a warning says so.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch

from training.data import Batch, MixedBatches, TrainTransform, clean_caption, decode_image, require, sample_rng

log = logging.getLogger(__name__)

STATE_FORMAT = 1
MAX_BAD_RUN = 10000  # consecutive bad samples: the data is broken, not a few samples
IMAGE_KEYS = ("jpg", "jpeg", "png", "webp")
_META = re.compile(r"__[^/]*__($|/)")  # webdataset's skip_meta


# -- reading shards --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ref:
    """A tar member seen while skipping: read only if the sample is still buffered at the resume point."""

    path: str
    offset: int
    size: int

    def read(self) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.size)
        if len(data) != self.size:  # the file shrank since: fail like tarfile would
            raise tarfile.ReadError("unexpected end of data")
        return data


def _bytes(value: bytes | _Ref) -> bytes:
    return value.read() if isinstance(value, _Ref) else value


def _local_path(url: str) -> str | None:
    if url.startswith("file:"):
        return url[5:]
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", url)
    return None if scheme and len(scheme.group(1)) > 1 else url  # "C:\..." is a local Windows path


def _members(url: str, stream: _Stream) -> Iterator[tuple[str, bytes | _Ref]]:
    """(file name, data) of the regular members of one shard; data is a ``_Ref`` while skipping a
    seekable local file. A broken or truncated shard ends early with a warning."""
    path = _local_path(url)
    wds = require("webdataset")
    handle = None
    try:
        if path is not None:
            tar = tarfile.open(path, "r:*")
        else:
            handle = wds.gopen(url, "rb")
            tar = tarfile.open(fileobj=handle, mode="r|*")
        with tar:
            seekable = path is not None and isinstance(tar.fileobj, io.BufferedReader)
            end = os.fstat(tar.fileobj.fileno()).st_size if seekable else 0
            while (info := tar.next()) is not None:
                tar.members = []  # do not keep every header of a large shard
                if not info.isreg() or _META.match(info.name):
                    continue
                if stream.skipping and seekable and not info.issparse():
                    if info.offset_data + info.size > end:  # what reading it would raise: same stream
                        raise tarfile.ReadError("unexpected end of data")
                    yield info.name, _Ref(path, info.offset_data, info.size)
                else:
                    yield info.name, tar.extractfile(info).read()
    except Exception as exc:  # unreadable/truncated shard: keep what was read, go on with the next
        log.warning("shard %s: %s (rest of the shard skipped)", url, exc)
    finally:
        if handle is not None:
            try:
                handle.close()  # a pipe: reports its command's exit status here
            except Exception as exc:
                log.warning("shard %s: %s", url, exc)


def _samples(url: str, stream: _Stream) -> Iterator[dict[str, Any]]:
    """Group consecutive members by key as webdataset does (``base_plus_ext``, lower-case suffixes)."""
    from webdataset.tariterators import base_plus_ext

    current: dict[str, Any] | None = None
    for name, data in _members(url, stream):
        key, suffix = base_plus_ext(name)
        if key is None:
            continue
        if current is None or key != current["__key__"]:
            if current is not None:
                yield current
            current = {"__key__": key, "__url__": url}
        current.setdefault(suffix.lower(), data)  # a duplicate member is dropped (webdataset: warn)
    if current is not None:
        yield current


def _raw_samples(urls: tuple[str, ...], rng, stream: _Stream) -> Iterator[dict[str, Any]]:
    """Shards drawn with replacement forever (``ResampledShards``), their samples in order."""
    empty, limit = 0, 10 * len(urls) + 50
    while True:
        got = 0
        for sample in _samples(rng.choice(urls), stream):
            got += 1
            yield sample
        empty = 0 if got else empty + 1
        if empty >= limit:
            raise RuntimeError(f"no readable sample in the last {limit} shards drawn from {urls[0]} ...")


def _shuffled(src: Iterator[Any], size: int, rng) -> Iterator[Any]:
    """A seeded shuffle buffer: filled to ``size``, then each new sample replaces a random one."""
    if size <= 1:
        yield from src
        return
    buf: list[Any] = []
    for sample in src:
        if len(buf) < size:
            buf.append(sample)
            continue
        k = rng.randrange(size)
        buf[k], sample = sample, buf[k]
        yield sample


def decode(raw: dict[str, Any], transform: TrainTransform, rng) -> dict[str, Any] | None:
    """A raw tar sample -> ``{pixel_values, caption, key}``; ``None`` (and a warning) if it is bad."""
    try:
        meta = json.loads(_bytes(raw["json"])) if "json" in raw else {"caption": _bytes(raw["txt"]).decode()}
        caption = clean_caption(str(meta.get("caption") or ""))
        if not caption:
            raise ValueError("empty caption")
        data = next((raw[k] for k in IMAGE_KEYS if k in raw), None)
        if data is None:
            raise ValueError("no image member")
        pixels = transform(decode_image(_bytes(data)), rng)
    except Exception as exc:
        log.warning("skipping sample %s: %s", raw.get("__key__"), exc)
        return None
    return {"pixel_values": pixels, "caption": caption, "key": raw["__key__"]}


# -- one logical stream, one source per rank ----------------------------------------------------
@dataclass(frozen=True)
class StreamSpec:
    urls: tuple[str, ...]
    transform: TrainTransform
    batch_size: int
    shuffle_buffer: int
    seed: int
    generation: int
    source: int
    rank: int


class _Stream:
    """Logical stream ``logical`` of one (source, rank), fast-forwarded past ``consumed`` raw samples."""

    def __init__(self, spec: StreamSpec, logical: int, consumed: int):
        self.spec, self.logical = spec, logical
        self.coords = (spec.generation, spec.source, spec.rank, logical)
        self.skipping = True
        raw = _raw_samples(spec.urls, sample_rng(spec.seed, -2, *self.coords), self)
        self.raw = _shuffled(raw, spec.shuffle_buffer, sample_rng(spec.seed, -3, *self.coords))
        if sum(1 for _ in islice(self.raw, consumed)) != consumed:
            raise RuntimeError("shard stream ended while skipping")  # cannot happen: it is endless
        self.consumed = consumed
        self.skipping = False

    def batch(self) -> Batch:
        spec, samples, skipped, bad_run = self.spec, [], 0, 0
        while len(samples) < spec.batch_size:
            raw = next(self.raw)
            self.consumed += 1
            sample = decode(raw, spec.transform, sample_rng(spec.seed, *self.coords, self.consumed))
            if sample is None:
                skipped, bad_run = skipped + 1, bad_run + 1
                if bad_run >= MAX_BAD_RUN:
                    raise RuntimeError(f"{bad_run} bad samples in a row in {spec.urls[0]} ...: check the shards")
            else:
                samples.append(sample)
                bad_run = 0
        return Batch(captions=tuple(s["caption"] for s in samples), keys=tuple(s["key"] for s in samples),
                     pixel_values=torch.stack([s["pixel_values"] for s in samples]), skipped=skipped,
                     origin=(self.logical, self.consumed))


class ShardSource(torch.utils.data.IterableDataset):
    """One source of one rank: ``layout`` logical streams, served round robin from batch ``offset``."""

    def __init__(self, spec: StreamSpec, layout: int, consumed: tuple[int, ...], offset: int):
        super().__init__()
        self.spec, self.layout, self.consumed, self.offset = spec, layout, consumed, offset

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if self.layout % workers:
            raise ValueError(f"{workers} workers cannot replay {self.layout} logical streams")
        mine = [(worker + self.offset + j * workers) % self.layout for j in range(self.layout // workers)]
        streams = [_Stream(self.spec, n, self.consumed[n]) for n in mine]
        while True:
            for stream in streams:
                yield stream.batch()


class _Tracked:
    """Main-process view of a source: counts batches taken and where each logical stream stands."""

    def __init__(self, source: ShardSource, workers: int, batches: int):
        self.layout, self.batches, self.consumed = source.layout, batches, list(source.consumed)
        loader = torch.utils.data.DataLoader(source, batch_size=None, num_workers=workers) if workers else source
        self.it = iter(loader)

    def __iter__(self) -> _Tracked:
        return self

    def __next__(self) -> Batch:
        batch = next(self.it)
        logical, consumed = batch.origin
        expected = self.batches % self.layout
        if logical != expected:  # the order guarantee above was broken: say so loudly
            raise RuntimeError(f"batch {self.batches} came from shard stream {logical}, expected {expected}")
        self.consumed[logical] = consumed
        self.batches += 1
        return batch


class ShardBatches:
    """One rank's stage-1 batches: sources mixed whole-batch by ratio, resumable through ``state()``."""

    def __init__(self, cfg, transform: TrainTransform, rank: int, world: int, start_step: int,
                 state: dict[str, Any] | None = None):
        from webdataset.shardlists import expand_urls

        require("webdataset")
        patterns = [(u, r) for u, r in zip((cfg.laion_shards, cfg.ccsbu_shards), cfg.sample_ratios) if u]
        usable = _usable(state, rank, world, len(patterns), start_step)
        if usable:
            generation, layout = state["generation"], state["layout"]
            counts = [(s["batches"], tuple(s["consumed"])) for s in state["sources"]]
        else:
            generation, layout = start_step, max(1, cfg.num_workers)
            counts = [(0, (0,) * layout)] * len(patterns)
        # the most workers (<= num_workers) that divide the layout; 0 = in-process
        workers = max((d for d in range(1, min(layout, cfg.num_workers) + 1) if layout % d == 0), default=0)
        if cfg.num_workers and workers != cfg.num_workers:
            log.info("using %d DataLoader workers to replay the %d shard streams of this run", workers, layout)
        self.rank, self.world, self.generation, self.layout = rank, world, generation, layout
        self.sources = []
        for k, ((pattern, _), (batches, consumed)) in enumerate(zip(patterns, counts)):
            spec = StreamSpec(tuple(expand_urls(pattern)), transform, cfg.batch_size, cfg.shuffle_buffer,
                              cfg.seed, generation, k, rank)
            self.sources.append(_Tracked(ShardSource(spec, layout, consumed, batches % layout), workers, batches))
        self.mixed = MixedBatches(self.sources, [r for _, r in patterns], cfg.seed, start_step * cfg.grad_accum,
                                  rank)

    def __iter__(self) -> ShardBatches:
        return self

    def __next__(self) -> Batch:
        return next(self.mixed)

    def state(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "rank": self.rank, "world": self.world, "generation": self.generation,
                "layout": self.layout,
                "sources": [{"batches": s.batches, "consumed": list(s.consumed)} for s in self.sources]}


def _usable(state: dict[str, Any] | None, rank: int, world: int, n_sources: int, start_step: int) -> bool:
    """Whether a checkpoint's data state can position this rank's streams exactly."""
    if not start_step:
        return False
    if state is None:
        why = f"the checkpoint has no data state for rank {rank}"
    elif state.get("world") != world or state.get("rank") != rank:
        why = f"it was saved by {state.get('world')} process(es), this run has {world}"
    elif state.get("format") != STATE_FORMAT or len(state.get("sources", ())) != n_sources:
        why = "its data state does not match this configuration"
    else:
        return True
    log.warning("stage 1 resumes with fresh shard streams (same distribution, not the same samples): %s", why)
    return False
