#!/usr/bin/env bash
# Build llama.cpp (CUDA) on the GPU machine, write GGUF files with real models' shapes, and
# measure what llama-server really takes on the GPU: ONE command, since the machine and its
# files are gone after it. Run from the repository root with the trimmed llama.cpp source at
# .gpu-src/llama.cpp.tar.xz (see docs/estimator-accuracy.md) and $OUT set:
#
#   bash tests/gpu/measure_llama_cpp.sh
#
# Results: $OUT/measurements.jsonl (one line per case), $OUT/gpu_facts.json,
# $OUT/logs.tar.gz (server logs), $OUT/build.log.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/models /tmp/logs
START=$(date +%s)
DEADLINE=${DEADLINE:-510}
elapsed() { echo $(( $(date +%s) - START )); }
ROOT=$(pwd)

echo "== host"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
df -h /tmp | tail -1; nproc

mkdir -p /tmp/src && tar -C /tmp/src -xJf .gpu-src/llama.cpp.tar.xz
export PYTHONPATH=/tmp/src/llama.cpp/gguf-py
export PYTHONUNBUFFERED=1

# 1. build in the background
(
  cd /tmp/src/llama.cpp &&
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_FA=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF &&
  cmake --build build -j 15 --target llama-server
) > "$OUT/build.log" 2>&1 &
BUILD_PID=$!

# 2. GPU facts while the GPU is idle
echo "== gpu facts"
python3 tests/gpu/check_gpu_facts.py "$OUT/gpu_facts.json" | tail -n 8

# 3. models, written one after another in the background (tmp name, renamed when complete)
# CASESET=calibration (the first run: the constants were fitted on it) or validation (new
# shapes and settings, measured after the constants were fixed)
CASESET=${CASESET:-calibration}
if [ "$CASESET" = validation ]; then
  CASES="mistral-7b:q4_0 qwen2.5-3b:q8_0 llama-3.1-8b:q8_0 qwen2.5-14b:q4_0 llama-3.1-8b:q4_k_m yi-34b:q4_0"
else
  CASES="teamllm-tiny:q8_0 llama-3.1-8b:q8_0 qwen2.5-0.5b:f16 llama-3.1-8b:q4_k_m qwen2.5-7b:q8_0 llama-3.1-8b:f16"
fi
(
  for c in $CASES; do
    shape=${c%%:*}; t=${c##*:}; f=/tmp/models/$shape-$t.gguf
    # stay at most two files ahead of the measurements (disk)
    while [ "$(ls /tmp/models/*.gguf 2>/dev/null | wc -l)" -ge 2 ]; do sleep 1; done
    if [ "$shape" = teamllm-tiny ]; then
      python3 tools/make_tiny_gguf.py "$f.tmp" --type "$t" >/dev/null 2>&1 \
        || python3 tests/gpu/gen_gguf.py smoke "$t" "$f.tmp"
    else
      python3 tests/gpu/gen_gguf.py "$shape" "$t" "$f.tmp"
    fi && mv "$f.tmp" "$f"
  done
) > /tmp/logs/gen.log 2>&1 &

wait $BUILD_PID; rc=$?
echo "== build rc=$rc after $(elapsed)s"; tail -n 3 "$OUT/build.log"
SERVER=/tmp/src/llama.cpp/build/bin/llama-server
if [ ! -x "$SERVER" ]; then echo "BUILD FAILED"; tail -n 40 "$OUT/build.log"; exit 1; fi

wait_for() { for _ in $(seq 1 240); do [ -f "$1" ] && return 0; sleep 1; done; return 1; }
measure() { # file label ctx parallel [server args]
  if [ "$(elapsed)" -gt "$DEADLINE" ]; then echo "skip $2 (time)"; return; fi
  wait_for "$1" || { echo "missing $1"; return; }
  f=$1 l=$2 c=$3 p=$4; shift 4
  python3 tests/gpu/measure_server.py "$SERVER" "$f" "$l" "$c" "$p" "$OUT/measurements.jsonl" /tmp/logs "$@"
}
M=/tmp/models
if [ "$CASESET" = validation ]; then
measure $M/mistral-7b-q4_0.gguf mistral7b-q4_0-c8192 8192 1
rm -f $M/mistral-7b-q4_0.gguf
measure $M/qwen2.5-3b-q8_0.gguf qwen3b-q8_0-c16384-np2 16384 2
rm -f $M/qwen2.5-3b-q8_0.gguf
measure $M/llama-3.1-8b-q8_0.gguf llama8b-q8_0-c8192-ngl20 8192 1 -ngl 20
rm -f $M/llama-3.1-8b-q8_0.gguf
measure $M/qwen2.5-14b-q4_0.gguf qwen14b-q4_0-c4096 4096 1
rm -f $M/qwen2.5-14b-q4_0.gguf
measure $M/llama-3.1-8b-q4_k_m.gguf llama8b-q4_k_m-c32768 32768 1
rm -f $M/llama-3.1-8b-q4_k_m.gguf
measure $M/yi-34b-q4_0.gguf yi34b-q4_0-c4096 4096 1
rm -f $M/yi-34b-q4_0.gguf
else
measure $M/teamllm-tiny-q8_0.gguf tiny-q8_0-c2048 2048 1
measure $M/llama-3.1-8b-q8_0.gguf llama8b-q8_0-c4096 4096 1
measure $M/llama-3.1-8b-q8_0.gguf llama8b-q8_0-c16384 16384 1
measure $M/llama-3.1-8b-q8_0.gguf llama8b-q8_0-c4096-np4 4096 4
rm -f $M/llama-3.1-8b-q8_0.gguf
measure $M/qwen2.5-0.5b-f16.gguf qwen05b-f16-c4096 4096 1
measure $M/qwen2.5-0.5b-f16.gguf qwen05b-f16-c32768 32768 1
rm -f $M/qwen2.5-0.5b-f16.gguf
measure $M/llama-3.1-8b-q4_k_m.gguf llama8b-q4_k_m-c8192 8192 1
rm -f $M/llama-3.1-8b-q4_k_m.gguf
measure $M/qwen2.5-7b-q8_0.gguf qwen7b-q8_0-c8192 8192 1
rm -f $M/qwen2.5-7b-q8_0.gguf
measure $M/llama-3.1-8b-f16.gguf llama8b-f16-c8192 8192 1
fi

cp /tmp/logs/gen.log "$OUT/gen.log"
tar -C /tmp -czf "$OUT/logs.tar.gz" logs
echo "== done after $(elapsed)s"
