#!/usr/bin/env bash
# The GPU exporter on a real NVIDIA GPU, and the plan against reality, in ONE command (the GPU
# machine and its files are gone after it). From the repository root of a machine with an
# NVIDIA GPU and its driver, no network, $OUT set, and carried:
#   .gpucarry-mon/  tests/gpu/prepare_exporter_check.sh: the exporter's wheels, role.env,
#                   gpu-plan.json, estimate.json
#   .gpucarry/      tests/gpu/prepare_throughput.sh: llama.cpp's source (gguf-py, and a build
#                   when no binary is usable) and optionally llama-bin.tar.xz (a CUDA build)
#
#   bash tests/gpu/exporter_check.sh
#
# 1. the GPU and its driver: nvidia-smi -q;
# 2. the exporter installed as the role installs it (each wheel checked against the lock's
#    sha256; unpacked onto PYTHONPATH, since pip-installed wheels are not importable there),
#    with teamllm's additions (roles/gpu_exporter/files/teamllm_gpu_exporter.py), --plan as
#    the role writes it; scraped with the GPU idle;
# 3. llama-server started with the llama_cpp role's environment for the plan's instance
#    (role.env) on a zero-weight GGUF of Llama 3.1 8B Q8_0 (tests/gpu/gen_gguf.py --zero; the
#    memory is that of real weights) - under a systemd unit of the role's name when systemd
#    runs here (then the exporter matches it by cgroup), else as a plain process - one request,
#    then a second scrape;
# 4. the comparison: the placement's estimate next to what the process holds (NVML per
#    process, nvidia-smi's compute apps, the GPU's used memory loaded minus idle).
# $OUT (8 files): run.log, nvidia-smi-q.txt, metrics-idle.txt, metrics-loaded.txt,
# plan-vs-reality.json (date, GPU, UUID, driver, CUDA, estimate, measured), role.env,
# llama-server.log, exporter.log. About 1-2 minutes with a carried CUDA build, 6-7 when it
# must build llama-server first.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/models
exec > >(tee -a "$OUT/run.log") 2>&1
ROOT=$(pwd)
MON=${MON:-$ROOT/.gpucarry-mon}
CARRY=${CARRY:-$ROOT/.gpucarry}
PORT=9400
START=$(date +%s)
log() { echo "[$(( $(date +%s) - START ))s] $*"; }
# HTTP without curl (not every image has it): http URL (GET) or http URL JSON (POST)
http() {
  python3 - "$@" <<'PY'
import sys, urllib.request
data = sys.argv[2].encode() if len(sys.argv) > 2 else None
req = urllib.request.Request(sys.argv[1], data=data, headers={"Content-Type": "application/json"})
try:
    sys.stdout.write(urllib.request.urlopen(req, timeout=60).read().decode())
except OSError:
    sys.exit(1)
PY
}
metrics() { http "http://127.0.0.1:$PORT/metrics"; }
cleanup() {
  [ -n "${LLAMA_PID:-}" ] && kill "$LLAMA_PID" 2>/dev/null
  [ -n "${UNIT:-}" ] && systemctl stop "$UNIT" 2>/dev/null
  [ -n "${EXPORTER_PID:-}" ] && kill "$EXPORTER_PID" 2>/dev/null
}
trap cleanup EXIT

# --- 1. the GPU and its driver -------------------------------------------------------------
log "host: $(nproc) cores; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
nvidia-smi -q >"$OUT/nvidia-smi-q.txt" 2>&1 || { log "nvidia-smi failed: no NVIDIA GPU?"; exit 1; }

# --- 2. the exporter, from the wheels checked against the lock ----------------------------
SITE=/tmp/exporter-site
rm -rf "$SITE" && mkdir -p "$SITE"
python3 - "$MON/requirements.txt" "$MON/wheels" "$SITE" <<'PY' || exit 1
import hashlib, pathlib, re, sys, zipfile
pins = dict(re.findall(r"^(\S+)==\S+ --hash=sha256:([0-9a-f]{64})$", open(sys.argv[1]).read(), re.M))
for wheel in sorted(pathlib.Path(sys.argv[2]).glob("*.whl")):
    name = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if pins.pop(name, None) != digest:
        sys.exit(f"{wheel.name}: sha256 {digest} is not the lock's")
    zipfile.ZipFile(wheel).extractall(sys.argv[3])
if pins:
    sys.exit(f"missing wheels: {sorted(pins)}")
print("wheels checked against the lock and unpacked")
PY
export PYTHONPATH=$SITE
EXPORTER=(python3 "$ROOT/roles/gpu_exporter/files/teamllm_gpu_exporter.py")
"${EXPORTER[@]}" --version
"${EXPORTER[@]}" --hostname gpu-check --bind-address 127.0.0.1 --port "$PORT" --interval 1 \
  --plan "$MON/gpu-plan.json" >"$OUT/exporter.log" 2>&1 &
EXPORTER_PID=$!
for _ in $(seq 1 60); do
  metrics >/dev/null && break
  kill -0 "$EXPORTER_PID" 2>/dev/null || break
  sleep 0.5
done
sleep 3
metrics >"$OUT/metrics-idle.txt" || { log "the exporter does not answer"; cat "$OUT/exporter.log"; exit 1; }
log "idle scrape: $(grep -vc '^#' "$OUT/metrics-idle.txt") samples"

# --- 3. llama-server with the plan's flags --------------------------------------------------
mkdir -p /tmp/src
[ -f "$CARRY/llama.cpp.tar.xz" ] && tar -C /tmp/src -xJf "$CARRY/llama.cpp.tar.xz"
export PYTHONPATH=$SITE:/tmp/src/llama.cpp/gguf-py
CUBLAS_DIR=$(dirname "$( (ldconfig -p | awk '/libcublas.so.13 /{print $NF}'; \
  find /usr/local/cuda*/lib64/ /usr/local/cuda*/targets/*/lib/ /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null) | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=${CUBLAS_DIR:+$CUBLAS_DIR:}${LD_LIBRARY_PATH:-}
usable() { "$1/llama-server" --list-devices 2>&1 | grep -q CUDA0; }
BIN=${LLAMA_BIN:-/tmp/llama-bin}
if [ -z "${LLAMA_BIN:-}" ] && [ -f "$CARRY/llama-bin.tar.xz" ]; then
  mkdir -p "$BIN" && tar -C "$BIN" -xJf "$CARRY/llama-bin.tar.xz"
fi
if ! usable "$BIN"; then
  BIN=$ROOT/.gpubuild/build/bin
  if ! usable "$BIN"; then
    log "no usable CUDA llama-server; building one (about 5 minutes)"
    ( cd /tmp/src/llama.cpp &&
      cmake -S . -B "$ROOT/.gpubuild/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
        -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES=90 &&
      cmake --build "$ROOT/.gpubuild/build" -j "$(nproc)" --target llama-server ) >/tmp/build.log 2>&1
    usable "$BIN" || { log "BUILD FAILED"; tail -n 30 /tmp/build.log; exit 1; }
  fi
fi
log "llama-server: $("$BIN/llama-server" --version 2>&1 | grep -m1 version) from $BIN"

set -a; . "$MON/role.env"; set +a
if [ ! -f "$LLAMA_ARG_MODEL" ]; then
  python3 tests/gpu/gen_gguf.py llama-3.1-8b q8_0 "$LLAMA_ARG_MODEL" --zero >/tmp/gen.log 2>&1 ||
    python3 tests/gpu/gen_gguf.py llama-3.1-8b q8_0 "$LLAMA_ARG_MODEL" >>/tmp/gen.log 2>&1 ||
    { log "cannot write the GGUF"; cat /tmp/gen.log; exit 1; }
fi
log "model: $LLAMA_ARG_MODEL ($(du -h --apparent-size "$LLAMA_ARG_MODEL" | cut -f1))"
UNIT_NAME=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["unit"])' "$MON/gpu-plan.json")
if [ "$(systemctl is-system-running 2>/dev/null)" = running ] || [ "$(systemctl is-system-running 2>/dev/null)" = degraded ]; then
  ENVS=(); while IFS='=' read -r k v; do [[ $k =~ ^[A-Z_]+$ ]] && ENVS+=(--setenv="$k=$v"); done <"$MON/role.env"
  systemd-run --unit="$UNIT_NAME" --setenv=LD_LIBRARY_PATH="$LD_LIBRARY_PATH" "${ENVS[@]}" \
    --property=StandardOutput=file:"$OUT/llama-server.log" --property=StandardError=file:"$OUT/llama-server.log" \
    "$BIN/llama-server" && UNIT=$UNIT_NAME
fi
if [ -z "${UNIT:-}" ]; then
  log "no systemd here: llama-server runs as a plain process (the exporter cannot match it to $UNIT_NAME)"
  "$BIN/llama-server" >"$OUT/llama-server.log" 2>&1 &
  LLAMA_PID=$!
fi
URL=http://127.0.0.1:$LLAMA_ARG_PORT
for _ in $(seq 1 240); do http "$URL/health" >/dev/null && break; sleep 1; done
http "$URL/health" >/dev/null || { log "llama-server not healthy"; tail -n 30 "$OUT/llama-server.log"; exit 1; }
log "llama-server healthy"
http "$URL/v1/chat/completions" '{"messages":[{"role":"user","content":"hello"}],"max_tokens":16}' >/dev/null
sleep 3
metrics >"$OUT/metrics-loaded.txt"
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits >/tmp/apps.csv 2>&1
cp "$MON/role.env" "$OUT/role.env"

# --- 4. the plan against reality -------------------------------------------------------------
python3 tests/gpu/exporter_report.py "$OUT" "$MON/estimate.json" /tmp/apps.csv "${LLAMA_PID:-}" "${UNIT:-}"
log "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
