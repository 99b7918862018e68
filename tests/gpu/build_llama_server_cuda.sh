#!/usr/bin/env bash
# On the GPU machine: build the mirror's `llama-server-cuda` step (the same code path as
# `tools/mirror_build.py --only llama-server-cuda`), then install the tarball it made the way
# the llama_cpp role does (unpack) and serve the project's tiny model fully offloaded to the
# GPU: /health, a chat completion, /metrics, and the GPU memory the process holds (nvidia-smi).
# ONE command, since the machine and its files are gone after it. From the repository root,
# with .device/ carried (trimmed llama.cpp source in .device/llama-src, the tiny model, a
# PyYAML wheel) and $OUT set:
#
#   bash tests/gpu/build_llama_server_cuda.sh
#
# Results: $OUT/cuda_build.json, $OUT/build.log, $OUT/server.log, $OUT/BUILD, $OUT/SHA256SUMS.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
ROOT=$(pwd)
START=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
nproc
# PyYAML for tools/mirror_build.py (the machine reaches no registry)
mkdir -p /tmp/pylib
for w in .device/wheels/*.whl; do python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall('/tmp/pylib')" "$w"; done
export PYTHONPATH=/tmp/pylib
export TEAMLLM_LLAMA_SRC=$ROOT/.device/llama-src TEAMLLM_CUDA_ARCHS=${TEAMLLM_CUDA_ARCHS:-90}
command -v ninja >/dev/null && export CMAKE_GENERATOR=Ninja
python3 tools/mirror_build.py --mirror /tmp/mirror --cache /tmp/cache --jobs "$(nproc)" \
  --only llama-server-cuda >"$OUT/build.log" 2>&1
rc=$?
BUILD_S=$(( $(date +%s) - START ))
cp /tmp/mirror/SHA256SUMS "$OUT/" 2>/dev/null
if [ $rc -ne 0 ]; then tail -30 "$OUT/build.log"; echo "{\"build_rc\": $rc, \"build_s\": $BUILD_S}" >"$OUT/cuda_build.json"; exit 1; fi
tarball=$(ls /tmp/mirror/llama.cpp/*cuda*.tar.gz)
mkdir -p /tmp/install && tar -C /tmp/install -xzf "$tarball"
cp /tmp/install/BUILD "$OUT/BUILD"
ldd /tmp/install/bin/llama-server >"$OUT/ldd.txt" 2>&1
/tmp/install/bin/llama-server --version >"$OUT/version.txt" 2>&1

# serve the tiny model, every layer on the GPU, the way the role's unit does (LLAMA_ARG_*)
LLAMA_ARG_HOST=127.0.0.1 LLAMA_ARG_PORT=8100 LLAMA_ARG_MODEL=$ROOT/.device/teamllm-tiny-q8_0.gguf \
LLAMA_ARG_ALIAS=teamllm-tiny LLAMA_ARG_CTX_SIZE=2048 LLAMA_ARG_N_PARALLEL=2 LLAMA_ARG_N_GPU_LAYERS=999 \
LLAMA_ARG_ENDPOINT_METRICS=1 LLAMA_ARG_NO_WEBUI=1 CUDA_VISIBLE_DEVICES=0 \
  /tmp/install/bin/llama-server >"$OUT/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 60); do curl -fs http://127.0.0.1:8100/health >/dev/null && break; sleep 1; done
health=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8100/health)
chat=$(curl -s http://127.0.0.1:8100/v1/chat/completions -H 'Content-Type: application/json' \
  -d '{"model":"teamllm-tiny","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}')
metrics=$(curl -s http://127.0.0.1:8100/metrics | grep -c '^llamacpp:' || true)
gpu_mib=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits | awk -F', ' -v p=$pid '$1==p{print $2}')
kill $pid; wait $pid 2>/dev/null
python3 - "$OUT/cuda_build.json" <<PY
import json, sys
chat = json.loads('''$chat''' or '{}')
json.dump({
    "date": "$(date -u +%F)", "gpu": open("$OUT/gpu.txt").read().strip(),
    "cuda_archs": "$TEAMLLM_CUDA_ARCHS", "build_s": $BUILD_S, "tarball": "$(basename "$tarball")",
    "health_status": int("$health" or 0),
    "chat_completion_tokens": chat.get("usage", {}).get("completion_tokens"),
    "chat_model": chat.get("model"),
    "metrics_lines": int("$metrics" or 0),
    "process_gpu_mib": int("${gpu_mib:-0}" or 0),
    "offloaded": "offloaded" in open("$OUT/server.log").read() and
                 [l for l in open("$OUT/server.log") if "offloaded" in l][-1].strip(),
}, open(sys.argv[1], "w"), indent=2)
PY
cat "$OUT/cuda_build.json"
