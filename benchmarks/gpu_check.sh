#!/usr/bin/env bash
# The one prepared GPU check: full-size MiniGPT-4 Vicuna 7B with random weights on one CUDA GPU, in under
# 8 minutes on an H100/H200. Measures load time, time to first token, decode tokens/s, peak VRAM and the
# fraction of the memory-bandwidth bound for bf16 and nf4 (engine/minigpt4/bench.py), then a few stage-1 and
# stage-2 training steps (benchmarks/training_throughput.py --size 7b), then, where the llama.cpp wheel was
# carried, torch vs llama.cpp decoding on the machine's many CPU cores (benchmarks/llamacpp_decode.py: is
# Q4_K_M bandwidth-bound there, where the 2-core machine is compute-bound?). Writes gpu_check.md (a table)
# and the raw outputs to $OUT (default benchmarks/out).
#
#   bash benchmarks/gpu_check.sh --fetch-wheels   # on a machine with PyPI: bitsandbytes etc. into .whl/
#   bash benchmarks/gpu_check.sh                  # on the GPU machine (installs .whl/*.whl if present)
#
# GPU_CHECK_PRESET=tiny GPU_CHECK_DEVICE=cpu runs the same steps on the tiny preset, to try the script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-benchmarks/out}
PRESET=${GPU_CHECK_PRESET:-vicuna0-7b}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
WORK=${GPU_CHECK_WORKDIR:-/tmp/lumen-gpu-check}
mkdir -p "$OUT" "$WORK"

if [ "${1:-}" = "--fetch-wheels" ]; then
  # What the GPU image lacks (it has torch, transformers, accelerate, safetensors, sentencepiece, pillow).
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "bitsandbytes>=0.45" "platformdirs>=4.0" "gguf>=0.10" diskcache
  # llama-cpp-python has no Linux wheel on PyPI: the one .ci/run built here (portable CPU, py3-none).
  cp ~/.cache/lumen-wheels/llama-cpp-python-*/llama_cpp_python-*.whl .whl/ 2>/dev/null || echo "no llama.cpp wheel cached"
  exit 0
fi
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lumen-site .whl/*.whl
  export PYTHONPATH="/tmp/lumen-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 ORT_DISABLE_TELEMETRY=1
"$PY" - <<'EOF' | tee "$OUT/machine.txt"
import platform, torch
print("date:", __import__("datetime").datetime.now().isoformat(timespec="minutes"))
print("gpu:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none", "| torch", torch.__version__,
      "| python", platform.python_version())
EOF

: > "$OUT/gpu_check.jsonl"
bench() {  # one precision: a table on stdout, its JSON line appended
  timeout 240 "$PY" -m engine bench --preset "$PRESET" --device "$DEVICE" --workdir "$WORK" \
    --new-tokens 128 --repeats 3 --warmup 1 "$@" | tee "$OUT/bench.log" | tail -n 1 >> "$OUT/gpu_check.jsonl"
}
bench --dtype bfloat16 || echo '{"failed": "bf16 decode"}' >> "$OUT/gpu_check.jsonl"
bench --dtype bfloat16 --quantization nf4 || echo '{"failed": "nf4 decode"}' >> "$OUT/gpu_check.jsonl"
size=7b hidden=2048; [ "$PRESET" = tiny ] && size=tiny hidden=256
timeout 150 "$PY" benchmarks/training_throughput.py --size "$size" --rounds 2 --steps 2 \
  --tokenizer resources/demo_model/tokenizer.model > "$OUT/training.json" \
  || echo '[{"failed": "training steps"}]' > "$OUT/training.json"
if "$PY" -c "import llama_cpp, gguf" 2>/dev/null; then
  timeout 150 "$PY" benchmarks/llamacpp_decode.py --hidden "$hidden" --layers 8 --prompt 128 --new 32 > "$OUT/llamacpp_cpu.md" 2>"$OUT/llamacpp_cpu.log" \
    || echo "llama.cpp CPU decode: failed (see llamacpp_cpu.log)" >> "$OUT/llamacpp_cpu.md"
else
  echo "llama.cpp CPU decode: not run (no llama-cpp-python wheel carried)" > "$OUT/llamacpp_cpu.md"
fi

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = [json.loads(line) for line in (out / "gpu_check.jsonl").read_text().splitlines() if line.strip()]
lines = [(out / "machine.txt").read_text().strip(), "",
         "| precision | load s | first token ms | decode tok/s | bandwidth fraction | peak GB |", "|---|---|---|---|---|---|"]
for r in rows:
    if "failed" in r:
        lines.append(f"| {r['failed']}: failed (see bench.log) | | | | | |")
        continue
    lines.append(f"| {r['dtype']} {r['quantization']} | {r['load_s']} | {r['time_to_first_token_ms']} | "
                 f"{r['decode_tokens_per_s']} | {r['bandwidth_fraction']} | {r['peak_memory_gb']} |")
lines += ["", "| training | batch | samples/s (images) | samples/s (cached features) | MFU | peak GiB |", "|---|---|---|---|---|---|"]
for r in json.loads((out / "training.json").read_text()):
    if "failed" in r:
        lines.append("| training steps: failed | | | | | |")
        continue
    lines.append(f"| {r['stage']} | {r['batch']} | {r['on_the_fly_samples_per_s']} | {r['cached_samples_per_s']} | "
                 f"{r.get('on_the_fly_mfu')} | {r.get('peak_memory_gb')} |")
lines += ["", "CPU decoding, torch vs llama.cpp (benchmarks/llamacpp_decode.py):", "",
          (out / "llamacpp_cpu.md").read_text().strip()]
(out / "gpu_check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
