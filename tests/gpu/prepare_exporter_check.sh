#!/usr/bin/env bash
# Here (the controller, no GPU): make .gpucarry-mon/ for tests/gpu/exporter_check.sh.
#
#   bash tests/gpu/prepare_exporter_check.sh [REPO]     # REPO: where the device copies from
#                                                        # (default: this checkout)
#
# - .gpucarry-mon/wheels/: the GPU exporter's wheels (nvitop-exporter and its dependencies),
#   taken from the mirror's wheelhouse when it is built (checked against SHA256SUMS), else
#   downloaded by pip; either way each is checked against the sha256 of
#   tools/mirror_steps/gpu-exporter-requirements.txt;
# - .gpucarry-mon/role.env, gpu-plan.json, estimate.json: the plan for one H200 and the
#   llama_cpp role's flags for it (tests/gpu/exporter_plan.py, through tests/gpu/role_env.py).
# The device command carries .gpucarry (the llama.cpp source and build of
# tests/gpu/prepare_throughput.sh) and .gpucarry-mon.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REPO=${1:-$ROOT}
CARRY=$REPO/.gpucarry-mon
PY=${PY:-$ROOT/.venv/bin/python}
MIRROR=${TEAMLLM_MIRROR:-${TEAMLLM_CACHE:-$HOME/.cache/teamllm}/mirror}
LOCK=$ROOT/tools/mirror_steps/gpu-exporter-requirements.txt
EXCLUDE=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir)/info/exclude
grep -qx '/.gpucarry-mon/' "$EXCLUDE" 2>/dev/null || echo /.gpucarry-mon/ >>"$EXCLUDE"
rm -rf "$CARRY" && mkdir -p "$CARRY/wheels"

TARBALL=$MIRROR/gpu-exporter/nvitop-exporter-1.7.2-wheelhouse.tar.gz
if [ -f "$TARBALL" ] && (cd "$MIRROR" && grep " gpu-exporter/$(basename "$TARBALL")\$" SHA256SUMS | sha256sum -c --quiet -); then
  tar -C "$CARRY/wheels" -xzf "$TARBALL" --strip-components=2 --wildcards '*/wheels/*.whl'
else
  "$PY" -m pip --isolated download --quiet --no-deps --require-hashes --only-binary :all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux2010_x86_64 --platform any -d "$CARRY/wheels" -r "$LOCK"
fi
"$PY" - "$LOCK" "$CARRY/wheels" <<'PY'
import hashlib, pathlib, re, sys
pins = dict(re.findall(r"^(\S+)==\S+ --hash=sha256:([0-9a-f]{64})$", open(sys.argv[1]).read(), re.M))
wheels = sorted(pathlib.Path(sys.argv[2]).glob("*.whl"))
got = {re.sub(r"[-_.]+", "-", w.name.split("-")[0]).lower(): hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
assert got == pins, f"wheels {got} do not match the lock {pins}"
print(f"{len(wheels)} wheels, each matching the lock")
PY
cp "$LOCK" "$CARRY/requirements.txt"
ROLE_ENV=$REPO/tests/gpu/role_env.py
[ -f "$ROLE_ENV" ] || ROLE_ENV=$ROOT/tests/gpu/role_env.py
PYTHONPATH=$ROOT/.collections "$PY" "$ROOT/tests/gpu/exporter_plan.py" --role-env "$ROLE_ENV" --out "$CARRY"
du -sh "$CARRY"
