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
  if [ "$rc" -eq 0 ]; then
    results+=("PASS  $name ($((SECONDS - start)) s)")
  else
    results+=("FAIL  $name ($((SECONDS - start)) s)")
    failed_stages+=("$name")
    failed=1
  fi
  return "$rc"
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

molecule_all() {
  stage "mirror artifacts" bash lab/lab.sh all || return 1
  local s rc=0
  for s in "$@"; do
    stage "molecule $s" molecule test -s "$s" || rc=1
  done
  return $rc
}

what=${1:-all}; shift || true
case "$what" in
  lint) stage lint lint ;;
  unit) stage unit unit ;;
  integration) stage integration integration ;;
  build) stage build build ;;
  ecosystem) stage ecosystem ecosystem ;;
  molecule) if [ "$#" -gt 0 ]; then molecule_all "$@"; else molecule_all "${SCENARIOS[@]}"; fi ;;
  all)
    stage lint lint
    stage unit unit
    stage integration integration
    stage build build
    stage ecosystem ecosystem
    molecule_all "${SCENARIOS[@]}"
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
