#!/usr/bin/env bash
# Every test of the collection, in stages. `make test` runs them all; `make unit` etc. one.
#   tests/run.sh all|lint|unit|integration|build|ecosystem|molecule [scenario ...]
# Exits non-zero when any stage fails; prints a summary line per stage.
# The stage functions are called through `stage`, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
export ANSIBLE_COLLECTIONS_PATH="$repo/.collections"
export TEAMLLM_CACHE=${TEAMLLM_CACHE:-$HOME/.cache/teamllm}
export TEAMLLM_MIRROR=${TEAMLLM_MIRROR:-$TEAMLLM_CACHE/mirror}
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=false PY_COLORS=0

# Molecule scenarios in the order they run; each must pass create, converge, idempotence,
# verify and destroy.
if [ -n "${MOLECULE_SCENARIOS:-}" ]; then
  read -r -a SCENARIOS <<<"$MOLECULE_SCENARIOS"
else
  SCENARIOS=()
  for dir in molecule/*/; do [ -d "$dir" ] && SCENARIOS+=("$(basename "$dir")"); done
fi

declare -a results=() failed_stages=()
failed=0
# Each stage's output is kept; a failed stage's last lines are printed again above the summary,
# so the end of the run (all that a CI log may keep) still says what failed.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
stage() {
  local name=$1; shift
  local start=$SECONDS rc log="$logs/${name// /_}.log"
  echo "=== $name"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  record "$name" "$rc" "$start"
}

# Record a stage's or job's result: NAME RC START (its $SECONDS at the start); returns RC.
record() {
  if [ "$2" -eq 0 ]; then
    results+=("PASS  $1 ($((SECONDS - $3)) s)")
  else
    results+=("FAIL  $1 ($((SECONDS - $3)) s)")
    failed_stages+=("$1")
    failed=1
  fi
  return "$2"
}

lint() {
  # ansible-lint installs this collection into $ANSIBLE_HOME/collections for its syntax check:
  # one of this checkout's own, so other checkouts linting at the same time cannot shadow it
  yamllint -s . && ANSIBLE_HOME="$repo/.ansible" ansible-lint --profile production --offline &&
    ruff check plugins tests tools benchmarks &&
    antsibull-changelog lint
}

# The monitoring's unit tests run Debian's promtool (rules, their test cases, the dashboards'
# queries) and mtail (the gateway's metrics program); the backup tool's unit and integration
# tests run restic: installed here when missing (CI is a fresh Debian machine, as root).
# Without them those tests skip, saying so.
unit_tools() {
  local missing=()
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v mtail >/dev/null 2>&1 || missing+=(mtail)
  command -v restic >/dev/null 2>&1 || missing+=(restic)
  # a PostgreSQL server and its clients, for the backup's dump and restore of Open WebUI on PostgreSQL
  { command -v pg_dump >/dev/null 2>&1 && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; } ||
    missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} for the monitoring's and the backup's tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  fi
}

unit() {
  unit_tools
  pytest -q -p no:cacheprovider -rfE --tb=short tests/unit tests/gateway
}

integration() {
  unit_tools  # restic, for the backup role's run on the controller
  pytest -q -p no:cacheprovider -rfE --tb=short tests/integration
}

build() {
  local out
  out=$(mktemp -d)
  ansible-galaxy collection build --force --output-path "$out" . >/dev/null &&
  ansible-galaxy collection install --force --offline --no-deps -p "$out/collections" "$out"/teamllm-stack-*.tar.gz >/dev/null &&
  ANSIBLE_COLLECTIONS_PATH="$out/collections" ansible-doc teamllm.stack.validate_inventory >/dev/null &&
  ANSIBLE_COLLECTIONS_PATH="$out/collections" ansible-doc -t role teamllm.stack.llama_cpp >/dev/null &&
  ANSIBLE_COLLECTIONS_PATH="$out/collections" ansible-doc -t filter teamllm.stack.download_source >/dev/null &&
  echo "built and installed $(basename "$out"/teamllm-stack-*.tar.gz); roles and plugins resolve by FQCN"
  local rc=$?
  rm -rf "$out"
  return "$rc"
}

# The ecosystem's own checks on the built collection: galaxy-importer, ansible-test sanity,
# antsibull-docs, ansible-builder (tests/ecosystem/check.sh; its tools in .venv-ecosystem).
ecosystem() {
  bash tests/ecosystem/check.sh
}

# --- Jobs side by side -------------------------------------------------------------------------
# The molecule scenarios, the integration tests and the ecosystem checks spend most of their time
# waiting (package installs, services starting, models answering), so TEST_JOBS of them (default
# 2, the machine's two cores) run at once, each into its own log. The terminal gets a line when
# one starts and ends, and every 60 s the last line of each running one's log; a failed job's last
# lines are printed again above the summary, as for the stages. TEST_JOBS=1 runs them one by one
# with their whole output on the terminal.
TEST_JOBS=${TEST_JOBS:-2}
declare -A job_names=() job_starts=()
running="$logs/running"
mkdir -p "$running"

# Start a job (NAME COMMAND...) once fewer than TEST_JOBS run; with TEST_JOBS=1, run it in front.
job() {
  local name=$1; shift
  if [ "$TEST_JOBS" -le 1 ]; then
    stage "$name" "$@"
    return 0
  fi
  while [ "${#job_names[@]}" -ge "$TEST_JOBS" ]; do job_reap; done
  local log="$logs/${name// /_}.log"
  echo "=== $name (started beside others; its last line every 60 s)"
  echo "$name" >"$running/${name// /_}"
  "$@" >"$log" 2>&1 &
  job_names[$!]=$name
  job_starts[$!]=$SECONDS
}

# Wait for one job to end and record its result.
job_reap() {
  local pid rc name
  wait -n -p pid
  rc=$?
  [ -n "${job_names[$pid]:-}" ] || return 0
  name=${job_names[$pid]}
  rm -f "$running/${name// /_}"
  record "$name" "$rc" "${job_starts[$pid]}"
  echo "=== ${results[-1]}"
  unset "job_names[$pid]" "job_starts[$pid]"
  return "$rc"
}

job_wait_all() {
  while [ "${#job_names[@]}" -gt 0 ]; do job_reap; done
}

# Every 60 s, the last line of each running job's log (until the run ends).
heartbeat() {
  local f name line
  while sleep 60; do
    for f in "$running"/*; do
      [ -e "$f" ] || continue
      name=$(cat "$f")
      line=$(tail -n 1 "$logs/${name// /_}.log" 2>/dev/null | cut -c1-160)
      echo "... [$(date -u +%H:%M:%S)] $name: $line"
    done
  done
}
if [ "$TEST_JOBS" -gt 1 ]; then
  heartbeat &
  heartbeat_pid=$!
  trap 'kill "$heartbeat_pid" 2>/dev/null; rm -rf "$logs"' EXIT
fi

# The scenarios that take longest start first, so the lanes end close together.
SLOW_FIRST=(open_webui default monitoring airgap gateway remote_engine)
ordered_scenarios() {
  local s seen=" "
  for s in "${SLOW_FIRST[@]}"; do
    [[ " $* " == *" $s "* ]] && { echo "$s"; seen+="$s "; }
  done
  for s in "$@"; do [[ "$seen" == *" $s "* ]] || echo "$s"; done
}

# The node images and the mirror's artifacts first (every scenario needs them), then the
# scenarios (and whatever the caller queued before) TEST_JOBS at a time.
molecule_all() {
  stage "mirror artifacts" bash lab/lab.sh all || return 1
  local s
  while read -r s; do
    job "molecule $s" molecule test -s "$s"
  done < <(if [ -n "${MOLECULE_SCENARIOS:-}" ]; then printf '%s\n' "$@"; else ordered_scenarios "$@"; fi)
}

what=${1:-all}; shift || true
case "$what" in
  lint) stage lint lint ;;
  unit) stage unit unit ;;
  integration) stage integration integration ;;
  build) stage build build ;;
  ecosystem) stage ecosystem ecosystem ;;
  molecule)
    if [ "$#" -gt 0 ]; then molecule_all "$@"; else molecule_all "${SCENARIOS[@]}"; fi
    job_wait_all ;;
  all)
    stage lint lint
    stage unit unit
    stage build build
    # the ecosystem checks beside the mirror's build, the integration tests beside the scenarios
    job ecosystem ecosystem
    molecule_all "${SCENARIOS[@]}"
    job integration integration
    job_wait_all
    ;;
  *) echo "usage: tests/run.sh all|lint|unit|integration|build|ecosystem|molecule [scenario ...]"; exit 2 ;;
esac

for name in "${failed_stages[@]}"; do
  echo "=== the last 60 lines of the failed stage $name"
  tail -n 60 "$logs/${name// /_}.log"
done
echo "=== summary"
printf '%s\n' "${results[@]}"
pass=$(printf '%s\n' "${results[@]}" | grep -c '^PASS')
fail=$(printf '%s\n' "${results[@]}" | grep -c '^FAIL')
echo "stages: $pass passed, $fail failed"
exit $failed
