#!/bin/bash
# Run by playbooks/mirror.yml inside a throw-away container of a node image: resolves the
# packages given as arguments and their dependencies against the image's Debian sources,
# downloads them (apt's archive cache /cache is kept on the controller between builds; apt
# checks every cached .deb against the signed index), makes /repo exactly that set of .deb
# files and writes its flat index (Packages, Packages.gz, Release) with apt-ftparchive. The
# index is rewritten only when the set of packages changed; prints CHANGED then.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd /repo
# contrib and non-free (the NVIDIA driver's packages) as the nvidia_driver role adds them
sed -i -E 's/^(deb .* main)$/\1 contrib non-free non-free-firmware/' /etc/apt/sources.list 2>/dev/null || true
for f in /etc/apt/sources.list.d/*.sources; do
  [ -e "$f" ] && sed -i -E 's/^Components: main$/Components: main contrib non-free non-free-firmware/' "$f"
done
mkdir -p /cache/partial
apt-get update -qq
apt-get install -s -qq --no-install-recommends "$@" \
  | python3 -c '
import re, sys
for line in sys.stdin:
    m = re.match(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)", line)
    if m:
        print("%s_%s_%s.deb" % (m[1], m[2].replace(chr(58), "%3a"), m[3]))
' | sort > /tmp/want
echo "resolved $(wc -l < /tmp/want) packages for: $*"
apt-get install -y -qq --download-only --no-install-recommends -o Dir::Cache::archives=/cache "$@" >/dev/null
changed=0
for deb in *.deb; do
  [ -e "$deb" ] || continue
  grep -qxF "$deb" /tmp/want || { rm -f "$deb"; changed=1; }
done
while read -r deb; do
  if [ ! -e "$deb" ]; then
    cp "/cache/$deb" "$deb"
    changed=1
  fi
done < /tmp/want
if [ "$changed" = 1 ] || [ ! -e Release ] || [ ! -e Packages ]; then
  apt-get install -y -qq --no-install-recommends apt-utils >/dev/null
  apt-ftparchive packages . > /tmp/Packages
  gzip -9n -c /tmp/Packages > /tmp/Packages.gz
  mkdir -p /tmp/index && mv /tmp/Packages /tmp/Packages.gz /tmp/index/
  (cd /tmp/index && apt-ftparchive \
     -o APT::FTPArchive::Release::Origin=teamllm.stack \
     -o APT::FTPArchive::Release::Label=teamllm-bundle \
     -o "APT::FTPArchive::Release::Description=teamllm.stack offline bundle" \
     release . > /tmp/Release)
  mv /tmp/index/Packages /tmp/index/Packages.gz /tmp/Release .
  rm -f InRelease
  echo CHANGED
fi
chown -R "${OWNER:-0}" /repo
