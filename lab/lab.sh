#!/usr/bin/env bash
# The teamllm.stack container lab: a Docker engine, systemd node images and the artifacts the
# lab serves (llama.cpp's server built from source, a tiny generated model, Open WebUI's
# wheelhouse), all cached under a key derived from a hash of what produced them.
#
#   lab/lab.sh docker      start a Docker engine when none answers (installs docker.io if missing)
#   lab/lab.sh images [DISTRO ...]
#                          build the systemd node images (default: debian12 debian13; cached)
#   lab/lab.sh artifacts [STEP ...]
#                          build the mirror's artifacts (all default steps of
#                          tools/mirror_build.py, or the named ones) into the lab mirror (cached)
#   lab/lab.sh all         all of the above (what the tests need), the compile beside the rest
#   lab/lab.sh up          docker, the Debian 12 image and the lab's artifacts (model,
#                          llama-server, open-webui) side by side, start the lab node, converge
#                          site.yml, ask the model, print the curl line and Open WebUI's login
#   lab/lab.sh demo        ask the model through the gateway again, print the same
#   lab/lab.sh down        remove the lab node and its network
#   lab/lab.sh env         print the variables the lab uses (source-able)
#
# Variables: TEAMLLM_CACHE (default ~/.cache/teamllm), DEBIAN_MIRROR (default: the host's apt
# source), LAB_HTTPS_PORT (default 8443) and LAB_WEBUI_PORT (default 8444): the host ports on
# 127.0.0.1 of the gateway's API and Open WebUI servers; LAB_IMAGE_REPO (default teamllm-node):
# the node images' repository (another name builds fresh images, e.g. to time a cold build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${TEAMLLM_CACHE:-$HOME/.cache/teamllm}
mirror="$cache/mirror"
python=${PYTHON:-$repo/.venv/bin/python}
image_repo=${LAB_IMAGE_REPO:-teamllm-node}

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

# Seconds since $1 (date +%s) as 4m05s.
since() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# Say how a long command is doing until the process $2 ends: every 30 s "LABEL: <elapsed>, <the
# last line of LOG that matches PATTERN>". With QUIET_FOR=N, only when LOG (whose lines are
# shown anyway) has not grown for N seconds.
watch_log() {
  local label=$1 pid=$2 logf=$3 pattern=$4 start last said
  start=$(date +%s); said=$start
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    [ $(( $(date +%s) - said )) -ge 30 ] || continue
    if [ -n "${QUIET_FOR:-}" ]; then
      [ $(( $(date +%s) - $(stat -c %Y "$logf") )) -ge "$QUIET_FOR" ] || continue
    fi
    last=$(grep -aE "$pattern" "$logf" | tail -n1 | cut -c1-110 || true)
    log "$label: $(since "$start"), ${last:-started}"
    said=$(date +%s)
  done
}

# Run a long command with its output in LOG (shown only when it fails), saying every 30 s how
# far it got.
quietly() {
  local label=$1 logf=$2 pattern=$3 start pid rc=0; shift 3
  start=$(date +%s)
  "$@" >"$logf" 2>&1 &
  pid=$!
  watch_log "$label" "$pid" "$logf" "$pattern"
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then tail -n 30 "$logf" >&2; log "$label: FAILED after $(since "$start")"; return "$rc"; fi
  log "$label: done in $(since "$start")"
}

# The first Debian archive URL of the host's apt sources, unless DEBIAN_MIRROR is given.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local url
  url=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null \
        | grep -oE 'https?://[^ ]+/debian/?$|https?://[^ ]+/debian( |$)' | head -n1 | tr -d ' ')
  [ -n "$url" ] || die "no Debian archive found in the apt sources; set DEBIAN_MIRROR"
  echo "$url"
}


cmd_docker() {
  if docker info >/dev/null 2>&1; then log "Docker engine answers"; return; fi
  command -v dockerd >/dev/null 2>&1 || host_packages docker.io
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd in the background (log: /var/log/teamllm-dockerd.log)"
    nohup dockerd >/var/log/teamllm-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s; see /var/log/teamllm-dockerd.log"
  log "Docker engine up: $(docker info --format '{{.ServerVersion}} {{.Driver}}')"
}

# Node image: debootstrap a minimal Debian with systemd, import it, tag it by the recipe's hash.
cmd_images() {
  command -v debootstrap >/dev/null 2>&1 || host_packages debootstrap
  local recipe="$here/node-image.recipe" d suite key tag work
  for d in "$@"; do
    case "$d" in
      debian12) suite=bookworm ;;
      debian13) suite=trixie ;;
      *) die "unknown distro '$d' (known: debian12 debian13)" ;;
    esac
    key=$( (echo "$suite"; cat "$recipe") | sha256sum | cut -c1-12)
    tag="$image_repo:$d-$key"
    if docker image inspect "$tag" >/dev/null 2>&1; then
      log "node image $tag cached"
    else
      work=$(mktemp -d /var/tmp/teamllm-rootfs.XXXXXX)
      log "node image $tag: debootstrap $suite (about 2 minutes; log $work.log)"
      # shellcheck disable=SC2046
      quietly "debootstrap $suite" "$work.log" '^I: ' \
        debootstrap --variant=minbase --include=$(grep -vE '^\s*(#|$)' "$recipe" | paste -sd, -) \
        "$suite" "$work" "$(debian_mirror)" || die "debootstrap $suite failed"
      # the image carries no host identity and no policy that blocks service starts
      rm -f "$work/etc/machine-id" "$work/var/lib/dbus/machine-id" "$work/usr/sbin/policy-rc.d"
      touch "$work/etc/machine-id"
      tar -C "$work" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$tag" >/dev/null
      rm -rf "$work" "$work.log"
      log "built $tag"
    fi
    docker tag "$tag" "$image_repo:$d"
  done
}

# The artifacts the collection builds itself (tools/mirror_build.py and tools/mirror_steps/),
# into the lab mirror, each cached by a key of its inputs: all default steps, or the named ones
# (the lab itself needs `model`, `llama-server` and `open-webui`: llama.cpp's own server built
# from the source vendored in the pinned llama-cpp-python sdist, the tiny model and Open
# WebUI's wheelhouse). Arguments are step names, or mirror_build.py options (--skip STEP).
cmd_artifacts() {
  mkdir -p "$mirror"
  local args=() a prev=
  for a in "$@"; do
    case "$prev:$a" in --skip:*|*:-*) args+=("$a") ;; *) args+=(--only "$a") ;; esac
    prev=$a
  done
  "$python" "$repo/tools/mirror_build.py" --mirror "$mirror" --cache "$cache" "${args[@]}"
}

# The compile (llama-server, ~7 minutes on 2 cores) is the long pole: it runs in the background
# while the node images are made and the other steps download; a step's lock makes the
# foreground wait for it rather than build it twice.
build_side_by_side() {
  local images=$1; shift
  local started compile rc=0
  started=$(date +%s)
  cmd_artifacts llama-server & compile=$!
  # shellcheck disable=SC2086
  cmd_images $images || rc=$?
  [ "$rc" -eq 0 ] && { cmd_artifacts "$@" || rc=$?; }
  wait "$compile" || die "building llama-server failed (its last lines are above)"
  [ "$rc" -eq 0 ] || die "building the node images or the mirror's artifacts failed (see above)"
  log "images and artifacts ready after $(since "$started")"
}

# Host tools the lab needs and a fresh Debian may lack, installed in one apt-get run.
host_packages() {
  log "installing $* from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

host_tools() {
  local missing=() t
  for t in dockerd:docker.io debootstrap:debootstrap cmake:cmake g++:g++ make:make curl:curl; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t#*:}")
  done
  [ "${#missing[@]}" -eq 0 ] || host_packages "${missing[@]}"
}

lab_node=lab-node1
lab_net=teamllm-lab
lab_port=${LAB_HTTPS_PORT:-8443}
webui_port=${LAB_WEBUI_PORT:-8444}
# The Open WebUI administrator of the lab (the address is also in inventories/lab).
webui_email=admin@teamllm.test
webui_password_file="$cache/lab/open-webui-admin-password"

# The lab's secrets: random, kept in the cache (never committed), mode 0600, made once: the API
# keys (clients.json: lab-admin for people, lab-webui for Open WebUI) and the Open WebUI
# administrator's password.
lab_clients() {
  mkdir -p "$cache/lab"
  "$python" - "$cache/lab/clients.json" "$webui_password_file" <<'PY'
import json, os, secrets, sys

def make(path, text):
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)

make(sys.argv[1], json.dumps([{"name": n, "key": secrets.token_urlsafe(36)}
                              for n in ("lab-admin", "lab-webui")], indent=2))
make(sys.argv[2], secrets.token_urlsafe(18) + "\n")
PY
}

# Start the lab node; one started by an older lab.sh without Open WebUI's port is replaced.
start_node() {
  if docker container inspect "$lab_node" >/dev/null 2>&1 \
     && ! docker port "$lab_node" 8444/tcp >/dev/null 2>&1; then
    log "$lab_node has no Open WebUI port (started by an older lab.sh): replacing it"
    docker rm -f "$lab_node" >/dev/null
  fi
  docker network inspect "$lab_net" >/dev/null 2>&1 || docker network create "$lab_net" >/dev/null
  if ! docker container inspect "$lab_node" >/dev/null 2>&1; then
    log "starting $lab_node (Debian 12, systemd): gateway API on 127.0.0.1:$lab_port, Open WebUI on 127.0.0.1:$webui_port"
    docker run -d --name "$lab_node" --hostname "$lab_node" --network "$lab_net" \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined \
      --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns=host \
      -p "127.0.0.1:$lab_port:443" -p "127.0.0.1:$webui_port:8444" "$image_repo:debian12" >/dev/null
  fi
  local state
  for _ in $(seq 1 30); do
    state=$(docker exec "$lab_node" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 1
  done
}

# site.yml on the lab, its output shown as it comes, plus a line every 30 s while a task runs
# silently (the Open WebUI install takes minutes).
converge() {
  local logf="$cache/lab/converge.log" start pid rc=0
  start=$(date +%s)
  : >"$logf"
  log "converging site.yml on the lab (log $logf)"
  (cd "$repo" && TEAMLLM_CACHE="$cache" TEAMLLM_MIRROR="$mirror" \
    ANSIBLE_COLLECTIONS_PATH="$repo/.collections" \
    "$repo/.venv/bin/ansible-playbook" site.yml -i inventories/lab) > >(tee -a "$logf") 2>&1 &
  pid=$!
  QUIET_FOR=30 watch_log converge "$pid" "$logf" '^TASK \[' &
  wait "$pid" || rc=$?
  wait
  [ "$rc" -eq 0 ] || die "converging site.yml failed after $(since "$start") (log $logf)"
  log "converged in $(since "$start")"
}

cmd_up() {
  local started
  started=$(date +%s)
  host_tools; cmd_docker; lab_clients
  build_side_by_side debian12 model open-webui
  start_node
  converge
  cmd_demo
  log "make lab took $(since "$started")"
}

# shellcheck disable=SC2016  # the printed curl line keeps its $KEY for the user's shell
cmd_demo() {
  local key ca body password
  key=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["key"])' "$cache/lab/clients.json")
  ca="$cache/lab/$lab_node/ca.crt"
  body='{"model":"teamllm-tiny","max_tokens":24,"messages":[{"role":"user","content":"Say hello to the team"}]}'
  log "asking the model through the gateway"
  curl -sS --fail-with-body --cacert "$ca" "https://localhost:$lab_port/v1/chat/completions" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body"
  echo
  curl -sS --fail --cacert "$ca" -o /dev/null "https://localhost:$webui_port/health" \
    || die "Open WebUI does not answer at https://localhost:$webui_port/health"
  password=$(cat "$webui_password_file")
  printf '\nThe lab answers at https://localhost:%s (a tiny random-weight model: its words are noise).\n' "$lab_port"
  printf 'Repeat the request with:\n\n'
  printf '  KEY=$(python3 -c '\''import json; print(json.load(open("%s"))[0]["key"])'\'')\n' "$cache/lab/clients.json"
  printf '  curl --cacert %s https://localhost:%s/v1/chat/completions \\\n' "$ca" "$lab_port"
  printf '    -H "Authorization: Bearer $KEY" -H '\''Content-Type: application/json'\'' \\\n'
  printf "    -d '%s'\n\n" "$body"
  printf 'Add "stream": true to the body to stream.\n\n'
  printf 'Open WebUI, through the gateway: https://localhost:%s\n' "$webui_port"
  printf '  log in as %s with the password %s\n' "$webui_email" "$password"
  printf '  (the lab'\''s own throwaway password, kept in %s)\n' "$webui_password_file"
  printf '  The certificate is signed by the lab'\''s private CA %s: import it into the browser,\n' "$ca"
  printf '  or accept the warning. From another machine: ssh -L %s:localhost:%s THIS-HOST\n\n' "$webui_port" "$webui_port"
  printf 'Remove the lab with: lab/lab.sh down\n'
}

cmd_down() {
  docker rm -f "$lab_node" >/dev/null 2>&1 || true
  docker network rm "$lab_net" >/dev/null 2>&1 || true
  log "lab removed"
}

cmd_env() {
  echo "export TEAMLLM_CACHE=$cache"
  echo "export TEAMLLM_MIRROR=$mirror"
}

case "${1:-}" in
  docker) cmd_docker ;;
  images) shift; [ $# -gt 0 ] || set -- debian12 debian13; cmd_docker; cmd_images "$@" ;;
  artifacts) shift; cmd_artifacts "$@" ;;
  # llama-server-builds repacks the compiled llama-server: it runs once the compile is done
  all) host_tools; cmd_docker; lab_clients
       build_side_by_side "debian12 debian13" --skip llama-server --skip llama-server-builds
       cmd_artifacts llama-server-builds ;;
  up) cmd_up ;;
  demo) cmd_demo ;;
  down) cmd_down ;;
  env) cmd_env ;;
  *) sed -n "2,23p" "$0"; exit 2 ;;
esac
