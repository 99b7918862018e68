#!/usr/bin/env bash
# Decode throughput of llama.cpp (CUDA) on the GPU machine: the efficiency factor of the plan
# report's decode model, and the llama_cpp role's rendered flags against llama.cpp's own best.
# ONE command builds (or unpacks a carried build), writes the GGUF files, measures and leaves
# raw results in $OUT, since the machine and its files are gone after it. From the repository
# root, with .gpucarry/ carried (tests/gpu/prepare_throughput.sh makes it) and $OUT set:
#
#   bash tests/gpu/measure_throughput.sh
#
# .gpucarry/: llama.cpp.tar.xz (the trimmed llama.cpp source of the pinned llama-cpp-python
# sdist; gguf-py for the generator, and the fallback build), llama-bin.tar.xz (optional: the
# same source built elsewhere for sm_90; used when it runs here, else the script builds),
# role.env (the environment the llama_cpp role renders, tests/gpu/role_env.py).
#
# Phases (PHASES, in this order by default; each is skipped once DEADLINE seconds have passed):
#   facts    GPU name, driver, CUDA, clocks, bus width (NVML + nvidia-smi), copy/read bandwidth
#   bench8   llama-bench tg128 at depth 0 and 4096: Llama 3.1 8B Q8_0 (random and zero
#            weights), Q4_K_M
#   batched  llama-batched-bench on the 8B Q8_0: aggregate decode at 1..64 parallel sequences
#   server   llama-server with the role's environment (1, 8, 32 streams) and tuned by hand
#   bench32  llama-bench on Qwen2.5 32B Q4_K_M (sparse zero file)
#   ablate   the role's environment with one setting changed at a time
#   benchmoe llama-bench on Mixtral 8x7B Q4_K_M (sparse zero file)
#   bench70  llama-bench on Llama 3.1 70B Q4_K_M (sparse zero file)
#   repeat   (not in the default list) ROUNDS rounds, alternating: the role's environment with
#            as many slots as streams against the server tuned by hand, at 1, 8 and 32 streams
#            (tests/gpu/repeat_report.py: medians, spread, paired differences); REPEAT_STREAMS
#            picks the stream counts, VARIANT adds the role's environment with more settings
# Results: $OUT/gpu.json, bench.jsonl, batched.jsonl, server.jsonl, models.json, run.log,
# logs.tar.gz. tests/gpu/throughput_report.py turns them into the README tables.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/models /tmp/tlogs
exec > >(tee -a "$OUT/run.log") 2>&1
START=$(date +%s)
DEADLINE=${DEADLINE:-400}
PHASES=${PHASES:-facts bench8 batched server bench32 ablate benchmoe bench70}
ROOT=$(pwd)
CARRY=${CARRY:-$ROOT/.gpucarry}
M=/tmp/models
REQ=${REQ:-3}
REQ32=${REQ32:-2}
ROUNDS=${ROUNDS:-4}
REPEAT_STREAMS=${REPEAT_STREAMS:-1 8 32}
# VARIANT: role environment settings to add for a third configuration of the repeat phase
# (e.g. "LLAMA_ARG_CACHE_RAM=0"), served in the same rounds
VARIANT=${VARIANT:-}
export PYTHONUNBUFFERED=1
elapsed() { echo $(( $(date +%s) - START )); }
log() { echo "[$(elapsed)s] $*"; }
has_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }
late() { [ "$(elapsed)" -gt "$DEADLINE" ]; }

log "host: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB RAM, $(df -h /tmp | awk 'NR==2{print $4}') free on /tmp"
nvidia-smi dmon -s pucm -d 1 -o T >/tmp/tlogs/dmon.txt 2>&1 &
DMON=$!

# --- source (gguf-py) and binaries -------------------------------------------------------
mkdir -p /tmp/src && tar -C /tmp/src -xJf "$CARRY/llama.cpp.tar.xz"
export PYTHONPATH=/tmp/src/llama.cpp/gguf-py
# cuBLAS 13 for a carried build: the system's, else the one in the image's Python packages
CUBLAS_DIR=$(dirname "$( (ldconfig -p | awk '/libcublas.so.13 /{print $NF}'; \
  find /usr/local/cuda*/lib64/ /usr/local/cuda*/targets/*/lib/ /opt /usr/lib -name 'libcublas.so.13' 2>/dev/null) | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH=${CUBLAS_DIR:+$CUBLAS_DIR:}${LD_LIBRARY_PATH:-}
# REQUIRE_CUDA=0 and LLAMA_BIN=<dir with llama-server> test the server phase on a CPU-only
# machine (with the smoke model linked in place of the 8B).
REQUIRE_CUDA=${REQUIRE_CUDA:-1}
binaries_ok() {
  "$BIN/llama-server" --version >/tmp/tlogs/version.txt 2>&1 || return 1
  "$BIN/llama-server" --list-devices >/tmp/tlogs/devices.txt 2>&1
  if [ "$REQUIRE_CUDA" = 1 ]; then grep -q CUDA0 /tmp/tlogs/devices.txt || return 1; fi
  if has_phase bench8 || has_phase bench32 || has_phase benchmoe || has_phase bench70; then [ -x "$BIN/llama-bench" ] || return 1; fi
  if has_phase batched; then [ -x "$BIN/llama-batched-bench" ] || return 1; fi
  return 0
}
# 1. LLAMA_BIN or a build carried from elsewhere; 2. this script's own build from an earlier
# call on the same (still warm) machine, kept in the ignored .gpubuild/; 3. build now
BUILT_HERE=0
BIN=${LLAMA_BIN:-/tmp/llama-bin}
if [ -z "${LLAMA_BIN:-}" ] && [ -f "$CARRY/llama-bin.tar.xz" ]; then
  mkdir -p $BIN && tar -C $BIN -xJf "$CARRY/llama-bin.tar.xz"
fi
if ! binaries_ok; then
  BIN=$ROOT/.gpubuild/build/bin
  if binaries_ok; then BUILT_HERE=earlier; else
    log "no usable build ($(tail -n 2 /tmp/tlogs/version.txt 2>/dev/null | tr '\n' ' ')); building (about 5 min)"
    mkdir -p "$ROOT/.gpubuild"
    (
      cd /tmp/src/llama.cpp &&
      cmake -S . -B "$ROOT/.gpubuild/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
        -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
        -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DGGML_CUDA=ON \
        -DGGML_CUDA_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
        -DLLAMA_BUILD_COMMIT="$(cat BUILD_COMMIT 2>/dev/null || echo unknown)" -DLLAMA_BUILD_NUMBER=0 &&
      cmake --build "$ROOT/.gpubuild/build" -j "$(nproc)" --target llama-server llama-bench llama-batched-bench
    ) >/tmp/tlogs/build.log 2>&1
    BUILT_HERE=now
    binaries_ok || { log "BUILD FAILED"; tail -n 30 /tmp/tlogs/build.log; exit 1; }
  fi
fi
log "llama.cpp: $(grep -m1 version /tmp/tlogs/version.txt) from $BIN (built here: $BUILT_HERE, $(elapsed)s)"

# --- models, written in the background in the order they are needed -----------------------
# name shape type mode (random: tiled random weights, really written; zero: sparse file)
MODELS=${MODELS:-"llama-3.1-8b-q8_0:llama-3.1-8b:q8_0:random llama-3.1-8b-q8_0-zero:llama-3.1-8b:q8_0:zero
llama-3.1-8b-q4_k_m:llama-3.1-8b:q4_k_m:random qwen2.5-32b-q4_k_m-zero:qwen2.5-32b:q4_k_m:zero
llama-3.1-70b-q4_k_m-zero:llama-3.1-70b:q4_k_m:zero mixtral-8x7b-q4_k_m-zero:mixtral-8x7b:q4_k_m:zero"}
(
  for m in $MODELS; do
    IFS=: read -r name shape type mode <<<"$m"
    flag=""; [ "$mode" = zero ] && flag=--zero
    [ -f "$M/$name.gguf" ] && continue
    python3 tests/gpu/gen_gguf.py "$shape" "$type" "$M/$name.gguf.tmp" $flag && mv "$M/$name.gguf.tmp" "$M/$name.gguf"
  done
) >/tmp/tlogs/gen.log 2>&1 &
python3 - "$OUT/models.json" $MODELS <<'PY'
import json, subprocess, sys
rows = {}
for m in sys.argv[2:]:
    name, shape, wtype, mode = m.split(":")
    out = subprocess.run([sys.executable, "tests/gpu/gen_gguf.py", shape, wtype, "--summary"],
                         capture_output=True, text=True, check=True).stdout
    rows[name] = {**json.loads(out), "weights": mode}
json.dump(rows, open(sys.argv[1], "w"), indent=1)
PY
wait_for() { for _ in $(seq 1 300); do [ -f "$1" ] && return 0; sleep 1; done; log "missing $1"; return 1; }

# --- facts --------------------------------------------------------------------------------
if has_phase facts; then
  log "== facts"
  nvidia-smi -q >/tmp/tlogs/nvidia-smi-q.txt 2>&1
  python3 - "$OUT/gpu.json" <<'PY'
import json, subprocess, sys, time
import pynvml
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
def get(fn, *a):
    try:
        v = fn(*a)
        return v.decode() if isinstance(v, bytes) else v
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc}"
C = pynvml
facts = {
    "name": get(C.nvmlDeviceGetName, h), "uuid": get(C.nvmlDeviceGetUUID, h),
    "driver": get(C.nvmlSystemGetDriverVersion),
    "cuda_driver_version": get(C.nvmlSystemGetCudaDriverVersion),
    "memory_total_bytes": get(lambda: C.nvmlDeviceGetMemoryInfo(h).total),
    "memory_bus_width_bits": get(C.nvmlDeviceGetMemoryBusWidth, h),
    "max_mem_clock_mhz": get(C.nvmlDeviceGetMaxClockInfo, h, C.NVML_CLOCK_MEM),
    "max_sm_clock_mhz": get(C.nvmlDeviceGetMaxClockInfo, h, C.NVML_CLOCK_SM),
    "mem_clock_mhz_now": get(C.nvmlDeviceGetClockInfo, h, C.NVML_CLOCK_MEM),
    "sm_clock_mhz_now": get(C.nvmlDeviceGetClockInfo, h, C.NVML_CLOCK_SM),
    "app_mem_clock_mhz": get(C.nvmlDeviceGetApplicationsClock, h, C.NVML_CLOCK_MEM),
    "app_sm_clock_mhz": get(C.nvmlDeviceGetApplicationsClock, h, C.NVML_CLOCK_SM),
    "power_limit_w": get(lambda: C.nvmlDeviceGetEnforcedPowerLimit(h) / 1000),
    "pcie_gen_max": get(C.nvmlDeviceGetMaxPcieLinkGeneration, h),
    "pcie_width_max": get(C.nvmlDeviceGetMaxPcieLinkWidth, h),
    "ecc": get(lambda: C.nvmlDeviceGetEccMode(h)[0]),
    "compute_capability": get(C.nvmlDeviceGetCudaComputeCapability, h),
}
if isinstance(facts["max_mem_clock_mhz"], int) and isinstance(facts["memory_bus_width_bits"], int):
    # double data rate: two transfers per memory clock
    facts["bandwidth_from_clock_and_bus_bytes_s"] = (
        facts["max_mem_clock_mhz"] * 1e6 * 2 * facts["memory_bus_width_bits"] / 8)
q = "name,driver_version,memory.total,clocks.max.memory,clocks.max.sm,clocks.mem,clocks.sm,power.limit,pcie.link.gen.max,pcie.link.width.max"
facts["nvidia_smi"] = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv"],
                                     capture_output=True, text=True).stdout.strip()
facts["nvidia_smi_version"] = subprocess.run(["nvidia-smi", "--version"], capture_output=True,
                                             text=True).stdout.strip()
try:
    import torch
    x = torch.empty(4 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    x.fill_(1)
    def timed(fn, n=20):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(n):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record(); fn(); b.record(); torch.cuda.synchronize()
            ts.append(a.elapsed_time(b) / 1e3)
        ts.sort()
        return ts[len(ts) // 2]
    t_copy = timed(lambda: y.copy_(x))
    facts["copy_bytes_s"] = 2 * x.numel() / t_copy  # read + write
    xf = x.view(torch.float16)
    t_sum = timed(lambda: xf.sum(dtype=torch.float32))
    facts["read_bytes_s"] = x.numel() / t_sum  # a reduction: reads once
    facts["torch"] = torch.__version__
    facts["torch_cuda"] = torch.version.cuda
    del x, y
except Exception as exc:  # noqa: BLE001
    facts["bandwidth_error"] = str(exc)
facts["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
json.dump(facts, open(sys.argv[1], "w"), indent=1)
print(json.dumps({k: v for k, v in facts.items() if k != "nvidia_smi"}, indent=None)[:1500])
PY
  uname -r >/tmp/tlogs/kernel.txt
fi

# --- llama-bench ----------------------------------------------------------------------------
bench() { # name [extra llama-bench args]
  local name=$1; shift
  if late; then log "skip bench $name (time)"; return; fi
  wait_for "$M/$name.gguf" || return
  log "bench $name"
  timeout 200 "$BIN/llama-bench" -m "$M/$name.gguf" -p 0 -n 128 -d 0,4096 -r 3 -fa on -ngl 99 -o jsonl "$@" \
    >/tmp/tlogs/bench-$name.jsonl 2>/tmp/tlogs/bench-$name.log
  python3 - "$name" /tmp/tlogs/bench-$name.jsonl "$OUT/bench.jsonl" <<'PY'
import json, sys
name, src, dst = sys.argv[1:]
with open(dst, "a") as out:
    for line in open(src):
        if line.strip().startswith("{"):
            rec = json.loads(line)
            rec["model_name"] = name
            out.write(json.dumps(rec) + "\n")
            print(f"  {name}: tg{rec['n_gen']} @ d{rec['n_depth']}: {rec['avg_ts']:.1f} ± {rec['stddev_ts']:.1f} tok/s")
PY
}
if has_phase bench8; then
  log "== bench8"
  # where the weights live with every layer offloaded (token_embd stays in host memory)
  wait_for $M/llama-3.1-8b-q8_0.gguf &&
    timeout 60 "$BIN/llama-bench" -m $M/llama-3.1-8b-q8_0.gguf -p 0 -n 1 -r 1 -ngl 99 -v --no-warmup \
      >/tmp/tlogs/bench-verbose.log 2>&1
  grep -E "buffer size|assigned to device|offloaded" /tmp/tlogs/bench-verbose.log | head -n 8 | sed 's/^/    /'
  bench llama-3.1-8b-q8_0
  bench llama-3.1-8b-q8_0-zero
  rm -f $M/llama-3.1-8b-q8_0-zero.gguf
  bench llama-3.1-8b-q4_k_m
  rm -f $M/llama-3.1-8b-q4_k_m.gguf
fi

# --- llama-batched-bench ----------------------------------------------------------------------
if has_phase batched && ! late; then
  log "== batched"
  wait_for $M/llama-3.1-8b-q8_0.gguf &&
  for fa in on; do
    "$BIN/llama-batched-bench" -m $M/llama-3.1-8b-q8_0.gguf -c 32768 -b 2048 -ub 512 -ngl 99 \
      -fa $fa -npp 40 -ntg 128 -npl 1,8,16,32,64 --output-format jsonl \
      >/tmp/tlogs/batched-fa$fa.out 2>&1
    grep '^{' /tmp/tlogs/batched-fa$fa.out | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    r["tool"] = "llama-batched-bench"
    print(json.dumps(r))
    print("  pl=%3d S_TG=%.1f tok/s" % (r["pl"], r["speed_tg"]), file=sys.stderr)' >>"$OUT/batched.jsonl"
  done
fi

# --- llama-server: the role's environment, and tuned by hand ---------------------------------
ENVFILE=$CARRY/role.env
PORT=8100
serve() { # label envfile-or-"" "streams..." requests [server args...]
  local label=$1 envfile=$2 streams=$3 requests=$4; shift 4
  if late; then log "skip server $label (time)"; return; fi
  wait_for $M/llama-3.1-8b-q8_0.gguf || return
  local envs=()
  if [ -n "$envfile" ]; then mapfile -t envs < <(grep -v '^#' "$envfile" | grep '=')
  fi
  log "server $label: ${envs[*]:-} $*"
  # like the role's unit: the variables of the env file, nothing else of ours
  env -i PATH=/usr/bin:/bin HOME=/tmp LD_LIBRARY_PATH="$LD_LIBRARY_PATH" "${envs[@]}" \
    "$BIN/llama-server" "$@" >/tmp/tlogs/server-$label.log 2>&1 &
  local pid=$! ok=0
  for _ in $(seq 1 240); do
    if curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.5
  done
  if [ $ok = 1 ]; then
    local gpu_mib
    gpu_mib=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits | awk -F', ' -v p=$pid '$1==p{print $2}')
    python3 tests/gpu/bench_client.py --url "http://127.0.0.1:$PORT" --model llama-3.1-8b \
      --streams $streams --requests "$requests" --max-tokens 128 --label "$label" \
      --meta "{\"server_args\": \"$*\", \"env\": \"${envs[*]:-}\", \"gpu_mib\": \"${gpu_mib:-}\"}" \
      --out "$OUT/server.jsonl"
  else
    log "server $label did not start"; tail -n 20 /tmp/tlogs/server-$label.log
  fi
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  grep -E "n_ctx|n_slots|kv_unified|flash_attn|n_ubatch|n_batch|offloaded|backend_sampl|CUDA graph" /tmp/tlogs/server-$label.log | head -n 14 | sed 's/^/    /'
}
TUNED="-m $M/llama-3.1-8b-q8_0.gguf -a llama-3.1-8b --host 127.0.0.1 --port $PORT -ngl 999 -fa on -lm none -t 16 --cache-ram 0 --no-webui"
if has_phase server; then
  log "== server"
  # requests per stream: REQ (1 and 8 streams), REQ32 (32 streams)
  serve defaults "$ENVFILE" "1 8" "$REQ"
  serve defaults "$ENVFILE" 32 "$REQ32"
  serve defaults+backend-sampling <(cat "$ENVFILE"; echo LLAMA_ARG_BACKEND_SAMPLING=1) "1 8" "$REQ"
  serve defaults+backend-sampling <(cat "$ENVFILE"; echo LLAMA_ARG_BACKEND_SAMPLING=1) 32 "$REQ32"
  serve tuned-np1 "" 1 "$REQ" $TUNED -c 8192 -np 1
  serve tuned-np8 "" 8 "$REQ" $TUNED -c 65536 -np 8
  serve tuned-np32 "" 32 "$REQ32" $TUNED -c 262144 -np 32
  serve tuned-bs-np32 "" 32 "$REQ32" $TUNED -c 262144 -np 32 -bs
  serve tuned-kvu-np32 "" 32 "$REQ32" $TUNED -c 262144 -np 32 -kvu
fi

# --- larger models ------------------------------------------------------------------------------
bigbench() { bench "$1"; rm -f "$M/$1.gguf"; }
if has_phase bench32; then log "== bench32"; bigbench qwen2.5-32b-q4_k_m-zero; fi

# --- the role's environment, one setting changed -------------------------------------------------
if has_phase ablate; then
  log "== ablate"
  for n in 1 8; do
    serve defaults-np$n <(grep -v -e N_PARALLEL -e CTX_SIZE "$ENVFILE"; echo LLAMA_ARG_N_PARALLEL=$n; echo LLAMA_ARG_CTX_SIZE=$((8192 * n))) "$n" "$REQ"
  done
  serve defaults+cache-ram0 <(cat "$ENVFILE"; echo LLAMA_ARG_CACHE_RAM=0) 32 "$REQ32"
  serve defaults+fa-on <(grep -v FLASH_ATTN "$ENVFILE"; echo LLAMA_ARG_FLASH_ATTN=on) 32 "$REQ32"
fi
if has_phase repeat; then
  # The role's rendered environment with slots = streams (the plan's `parallel` set to the
  # concurrency measured) against the best hand-tuned server of the same slot count, in
  # alternating order (odd rounds defaults first, even rounds tuned first), so drift and
  # warm-up fall on both alike.
  log "== repeat ($ROUNDS rounds)"
  role_np() { grep -v -e N_PARALLEL -e CTX_SIZE "$ENVFILE"; echo "LLAMA_ARG_N_PARALLEL=$1"; echo "LLAMA_ARG_CTX_SIZE=$((8192 * $1))"; }
  for r in $(seq 1 "$ROUNDS"); do
    for n in $REPEAT_STREAMS; do
      req=$REQ; [ "$n" = 32 ] && req=$REQ32
      if [ $((r % 2)) = 1 ]; then
        serve "r$r-defaults-np$n" <(role_np "$n") "$n" "$req"
        serve "r$r-tuned-np$n" "" "$n" "$req" $TUNED -c $((8192 * n)) -np "$n"
        [ -z "$VARIANT" ] || serve "r$r-variant-np$n" <(role_np "$n"; tr ' ' '\n' <<<"$VARIANT") "$n" "$req"
      else
        [ -z "$VARIANT" ] || serve "r$r-variant-np$n" <(role_np "$n"; tr ' ' '\n' <<<"$VARIANT") "$n" "$req"
        serve "r$r-tuned-np$n" "" "$n" "$req" $TUNED -c $((8192 * n)) -np "$n"
        serve "r$r-defaults-np$n" <(role_np "$n") "$n" "$req"
      fi
    done
  done
fi
if has_phase benchmoe; then log "== benchmoe"; bigbench mixtral-8x7b-q4_k_m-zero; fi
if has_phase bench70; then log "== bench70"; bigbench llama-3.1-70b-q4_k_m-zero; fi

kill $DMON 2>/dev/null
cp /tmp/tlogs/version.txt "$OUT/" 2>/dev/null
tar -C /tmp -czf "$OUT/logs.tar.gz" tlogs
log "done"
