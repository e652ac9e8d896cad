"""Training test helpers: shards, and ``accelerate launch`` of ``python -m training`` on 127.0.0.1.
The tiny model directories and the parity manifest come from tests/conftest.py."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_launch(*flags: str) -> list[str]:
    """The command line of ``accelerate launch FLAGS -m training`` on CPU (append the training arguments;
    run it in ``ROOT`` with ``LAUNCH_ENV``)."""
    return [sys.executable, "-m", "accelerate.commands.launch", *flags, "--mixed_precision", "no",
            "--dynamo_backend", "no", "-m", "training"]


def write_shard(path: Path, samples: list[dict[str, bytes]], truncate: bool = False) -> None:
    """A webdataset tar: each sample is ``{"__key__": ..., "<ext>": bytes}``; ``truncate`` cuts the file in
    the middle of the last member's data (a partly copied shard)."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for sample in samples:
            for ext, data in sample.items():
                if ext != "__key__":
                    info = tarfile.TarInfo(f"{sample['__key__']}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    if truncate:
        with tarfile.open(path) as tar:
            last = tar.getmembers()[-1]
        path.write_bytes(path.read_bytes()[: last.offset_data + last.size // 2])


@pytest.fixture(scope="session")
def stage1_shards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two stage-1 sources (LAION-like: 3 shards + a truncated one; CC/SBU-like: 2 shards), 6 samples a
    shard, with bad samples: a corrupt JPEG, an empty caption, a missing image, and a ``.txt`` caption."""
    import io
    import random

    from PIL import Image

    root = tmp_path_factory.mktemp("stage1_shards")
    rng = random.Random(0)
    patterns = {}
    for name, shards in (("laion", 4), ("ccsbu", 2)):
        (root / name).mkdir()
        for j in range(shards):
            samples = []
            for i in range(6):
                image = Image.new("RGB", (64, 48), tuple(rng.randrange(256) for _ in range(3)))
                box = (rng.randrange(40), 0, 64, rng.randrange(8, 48))
                image.paste(tuple(rng.randrange(256) for _ in range(3)), box)
                buf = io.BytesIO()
                image.save(buf, format="JPEG", quality=90)
                caption = f"A {name} picture, shard {j} number {i}."
                samples.append({"__key__": f"{name}-{j}-{i}", "jpg": buf.getvalue(),
                                "json": json.dumps({"caption": caption}).encode()})
            samples[2]["jpg"] = b"not a jpeg"  # decodes to an error: skipped and counted
            if j == 1:
                samples[4]["json"] = json.dumps({"caption": "   "}).encode()  # empty caption
                del samples[5]["jpg"]  # no image member
                samples[3]["txt"] = samples[3].pop("json")  # plain-text caption (accepted)
            if j == 3:  # the member cut by the truncation is a caption that would still read as one
                samples[5]["txt"] = (" ".join(["long caption"] * 40)).encode()
                del samples[5]["json"]
            write_shard(root / name / f"{j:05d}.tar", samples, truncate=j == 3)
        patterns[name] = f"{root / name}/{{00000..{shards - 1:05d}}}.tar"
    return patterns
