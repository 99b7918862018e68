#!/usr/bin/env bash
# The teamllm.stack container lab: a Docker engine, systemd node images and the artifacts the
# lab serves (llama.cpp's server built from source, a tiny generated model), all cached under a
# key derived from a hash of what produced them.
#
#   lab/lab.sh docker      start a Docker engine when none answers (installs docker.io if missing)
#   lab/lab.sh images      build the Debian 12 and 13 systemd node images (cached)
#   lab/lab.sh artifacts [STEP ...]
#                          build the mirror's artifacts (all default steps of
#                          tools/mirror_build.py, or the named ones) into the lab mirror (cached)
#   lab/lab.sh all         all of the above (what the tests need)
#   lab/lab.sh up          docker, images, the lab's artifacts (model, llama-server), start the
#                          lab node, converge site.yml, ask the model
#   lab/lab.sh demo        ask the model through the gateway again
#   lab/lab.sh down        remove the lab node and its network
#   lab/lab.sh env         print the variables the lab uses (source-able)
#
# Variables: TEAMLLM_CACHE (default ~/.cache/teamllm), DEBIAN_MIRROR (default: the host's apt
# source), LAB_DISTROS (default "debian12 debian13").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${TEAMLLM_CACHE:-$HOME/.cache/teamllm}
mirror="$cache/mirror"
distros=${LAB_DISTROS:-debian12 debian13}
python=${PYTHON:-$repo/.venv/bin/python}

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

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
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing Debian's docker.io"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
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
  command -v debootstrap >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  local recipe="$here/node-image.recipe" d suite key tag work
  for d in $distros; do
    case "$d" in
      debian12) suite=bookworm ;;
      debian13) suite=trixie ;;
      *) die "unknown distro '$d' in LAB_DISTROS (known: debian12 debian13)" ;;
    esac
    key=$( (echo "$suite"; cat "$recipe") | sha256sum | cut -c1-12)
    tag="teamllm-node:$d-$key"
    if docker image inspect "$tag" >/dev/null 2>&1; then
      log "node image $tag cached"
    else
      work=$(mktemp -d /var/tmp/teamllm-rootfs.XXXXXX)
      log "debootstrap $suite into $work (about a minute)"
      # shellcheck disable=SC2046
      debootstrap --variant=minbase --include=$(grep -vE '^\s*(#|$)' "$recipe" | paste -sd, -) \
        "$suite" "$work" "$(debian_mirror)" >"$work.log" 2>&1 || { tail -20 "$work.log"; die "debootstrap $suite failed"; }
      # the image carries no host identity and no policy that blocks service starts
      rm -f "$work/etc/machine-id" "$work/var/lib/dbus/machine-id" "$work/usr/sbin/policy-rc.d"
      touch "$work/etc/machine-id"
      tar -C "$work" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$tag" >/dev/null
      rm -rf "$work" "$work.log"
      log "built $tag"
    fi
    docker tag "$tag" "teamllm-node:$d"
  done
}

# The artifacts the collection builds itself (tools/mirror_build.py and tools/mirror_steps/),
# into the lab mirror, each cached by a key of its inputs: all default steps, or the named ones
# (the lab itself needs only `model` and `llama-server`: llama.cpp's own server built from the
# source vendored in the pinned llama-cpp-python sdist, and the tiny model).
cmd_artifacts() {
  mkdir -p "$mirror"
  local only=() step
  for step in "$@"; do only+=(--only "$step"); done
  "$python" "$repo/tools/mirror_build.py" --mirror "$mirror" --cache "$cache" "${only[@]}"
}

lab_node=lab-node1
lab_net=teamllm-lab
lab_port=${LAB_HTTPS_PORT:-8443}

# The lab's API keys: random, kept in the cache (never committed), made once.
lab_clients() {
  mkdir -p "$cache/lab"
  if [ ! -s "$cache/lab/clients.json" ]; then
    "$python" - "$cache/lab/clients.json" <<'PY'
import json, os, secrets, sys
path = sys.argv[1]
clients = [{"name": n, "key": secrets.token_urlsafe(36)} for n in ("lab-admin", "lab-webui")]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(clients, f, indent=2)
PY
  fi
}

cmd_up() {
  cmd_docker; cmd_images; cmd_artifacts model llama-server; lab_clients
  docker network inspect "$lab_net" >/dev/null 2>&1 || docker network create "$lab_net" >/dev/null
  if ! docker container inspect "$lab_node" >/dev/null 2>&1; then
    log "starting $lab_node (Debian 12, systemd), gateway published on 127.0.0.1:$lab_port"
    docker run -d --name "$lab_node" --hostname "$lab_node" --network "$lab_net" \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined \
      --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns=host \
      -p "127.0.0.1:$lab_port:443" teamllm-node:debian12 >/dev/null
  fi
  for _ in $(seq 1 30); do
    state=$(docker exec "$lab_node" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 1
  done
  log "converging site.yml on the lab"
  (cd "$repo" && TEAMLLM_CACHE="$cache" TEAMLLM_MIRROR="$mirror" \
    ANSIBLE_COLLECTIONS_PATH="$repo/.collections" \
    "$repo/.venv/bin/ansible-playbook" site.yml -i inventories/lab)
  cmd_demo
}

cmd_demo() {
  local key ca body
  key=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["key"])' "$cache/lab/clients.json")
  ca="$cache/lab/$lab_node/ca.crt"
  body='{"model":"teamllm-tiny","max_tokens":24,"messages":[{"role":"user","content":"Say hello to the team"}]}'
  log "asking the model through the gateway"
  curl -sS --fail-with-body --cacert "$ca" "https://localhost:$lab_port/v1/chat/completions" \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body"
  echo
  printf '\nThe lab answers at https://localhost:%s (a tiny random-weight model: its words are noise).\n' "$lab_port"
  printf 'Repeat the request with:\n\n'
  printf '  KEY=$(python3 -c '\''import json; print(json.load(open("%s"))[0]["key"])'\'')\n' "$cache/lab/clients.json"
  printf '  curl --cacert %s https://localhost:%s/v1/chat/completions \\\n' "$ca" "$lab_port"
  printf '    -H "Authorization: Bearer $KEY" -H '\''Content-Type: application/json'\'' \\\n'
  printf "    -d '%s'\n\n" "$body"
  printf 'Add "stream": true to the body to stream. Remove the lab with: lab/lab.sh down\n'
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
  images) cmd_docker; cmd_images ;;
  artifacts) shift; cmd_artifacts "$@" ;;
  all) cmd_docker; cmd_images; cmd_artifacts; lab_clients ;;
  up) cmd_up ;;
  demo) cmd_demo ;;
  down) cmd_down ;;
  env) cmd_env ;;
  *) sed -n "2,19p" "$0"; exit 2 ;;
esac
