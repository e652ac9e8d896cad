"""Engine latency: time to first token, decode tokens/s, peak memory, load time (random weights).

    python benchmarks/engine_latency.py --preset tiny                       # CPU, here
    python benchmarks/engine_latency.py --preset vicuna0-7b --dtype bfloat16 --workdir /scratch
    python benchmarks/engine_latency.py --preset vicuna0-7b --quantization nf4 --workdir /scratch

Same as ``python -m engine bench``; see engine/minigpt4/bench.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.minigpt4.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
