#!/usr/bin/env bash
# The ecosystem's own checks, on the collection as it ships: build the tarball, check what it
# holds, install it as ansible_collections/teamllm/stack in a temporary directory, and run there
#   1. Galaxy's importer (galaxy-importer; its own ansible-test step off, step 2 is that)
#   2. ansible-test sanity --venv --python 3.11 (the pinned ansible-core)
#   3. antsibull-docs lint-collection-docs --plugin-docs
#   4. ansible-builder create on an execution environment holding the tarball, and
#      ansible-builder introspect on the installed collection
# plus shellcheck on the scripts of the test command. Tools come from
# tests/ecosystem/requirements.txt, in .venv-ecosystem (made here when missing or stale).
# Called by `tests/run.sh ecosystem`; exits non-zero when any check fails.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/tests/ecosystem"
venv="$repo/.venv-ecosystem"
started=$SECONDS
failed=()

step() { echo "--- [$((SECONDS - started)) s] $*"; }
fail() { echo "FAILED: $*"; failed+=("$1"); }
# pip as configured on the project's machines names local index folders that do not exist.
unnoise() { grep -v "is ignored: it is neither a file nor a directory" || true; }

if ! cmp -s "$here/requirements.txt" "$venv/.requirements-stamp"; then
  step "tools: $venv from tests/ecosystem/requirements.txt"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || exit 1
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" 2>&1 | unnoise
  [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
  cp "$here/requirements.txt" "$venv/.requirements-stamp"
fi
if ! command -v shellcheck >/dev/null; then
  echo "shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)"
  exit 1
fi
export PATH="$venv/bin:$PATH" ANSIBLE_FORCE_COLOR=false NO_COLOR=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
installed="$work/collections/ansible_collections/teamllm/stack"
export ANSIBLE_COLLECTIONS_PATH="$work/collections"

step "build the collection"
ansible-galaxy collection build --output-path "$work" "$repo" || exit 1
tarball=$(echo "$work"/teamllm-stack-*.tar.gz)

step "what ships: $(basename "$tarball"), $(du -k "$tarball" | cut -f1) KiB, $(tar tzf "$tarball" | wc -l) entries"
# Only what a user needs (galaxy.yml build_ignore says why); anything else is a leak.
allowed='^(MANIFEST\.json|FILES\.json|README\.md|LICENSE|\.ansible-lint-ignore|changelogs/.*|docs/.*|inventories/|inventories/team/.*|meta/.*|playbooks/.*|plugins/.*|roles/.*|tests/|tests/sanity/.*)$'
listing=$(tar tzf "$tarball")
leaked=$(grep -Ev "$allowed" <<<"$listing")
if [ -n "$leaked" ]; then
  fail "tarball" "files that should not ship:"
  printf '%s\n' "$leaked" | head -20
fi
needed=(LICENSE README.md meta/runtime.yml meta/execution-environment.yml meta/ee-requirements.txt
  meta/ee-bindep.txt playbooks/site.yml tests/sanity/ignore-2.19.txt)
for role in "$repo"/roles/*/; do
  needed+=("roles/$(basename "$role")/README.md")
done
for need in "${needed[@]}"; do
  grep -qx "$need" <<<"$listing" || fail "tarball" "missing from the tarball: $need"
done

ansible-galaxy collection install --offline --no-deps --force -p "$work/collections" "$tarball" >/dev/null ||
  exit 1
# The whole service runs by name from the installed collection.
if ! (cd "$work" && ansible-playbook -i localhost, --syntax-check teamllm.stack.site \
  >"$work/syntax.log" 2>&1); then
  cat "$work/syntax.log"
  fail "tarball" "ansible-playbook teamllm.stack.site --syntax-check"
fi

step "1/4 galaxy-importer $(pip show galaxy-importer 2>/dev/null | sed -n 's/^Version: //p')"
# (in $work: it writes importer_result.json into the current directory)
# Its ansible-lint resolves the collection's roles in an Ansible home of its own, never a copy
# another checkout installed into ~/.ansible
(cd "$work" && ANSIBLE_HOME="$work/ansible-home" GALAXY_IMPORTER_CONFIG="$here/galaxy-importer.cfg" \
  python -m galaxy_importer.main "$tarball" >"$work/importer.log" 2>&1)
rc=$?
grep -v '^\s*$' "$work/importer.log" | grep -Ev '^(Loading|Finding|Getting|Linting|Running|Importing|\.\.\.)'
# Any warning or error fails, except the notice that an ignore file exists (see
# tests/sanity/README.md for its lines).
problems=$(grep -E '^(WARNING|ERROR)' "$work/importer.log" |
  grep -v 'Ignore files skip ansible-test sanity tests, found ignore-2.19.txt')
if [ "$rc" -ne 0 ] || [ -n "$problems" ] || ! grep -q 'ansible-lint run complete' "$work/importer.log"; then
  fail "galaxy-importer" "exit $rc; $(echo "$problems" | grep -c .) warning(s) or error(s)"
fi

step "2/4 ansible-test sanity --venv --python 3.11 (ansible-core $(ansible --version | sed -n '1s/.*core \([0-9.]*\).*/\1/p'))"
# ansible-test --venv bootstraps pip with a get-pip.py it downloads from a host these
# machines cannot reach; the stand-in does the same from the package index.
pip_version=$(python - <<'EOF'
import re, ansible_test, pathlib
text = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
EOF
)
getpip=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ ! -s "$getpip" ]; then
  mkdir -p "$(dirname "$getpip")" && cp "$here/get_pip_standin.py" "$getpip"
  echo "pip bootstrap stand-in: $getpip"
fi
(cd "$installed" && ansible-test sanity --venv --python 3.11 --color no 2>&1) |
  grep -Ev 'is ignored: it is neither a file nor a directory|^(Collecting|Downloading|Processing|Installing collected|Successfully installed|Looking in|  )'
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "ansible-test sanity"

step "3/4 antsibull-docs lint-collection-docs --plugin-docs ($(pip show antsibull-docs 2>/dev/null | sed -n 's/^Version: //p'))"
(cd "$installed" && antsibull-docs lint-collection-docs --plugin-docs . >"$work/antsibull.log" 2>&1)
rc=$?
cat "$work/antsibull.log"
if [ "$rc" -ne 0 ] || [ -s "$work/antsibull.log" ]; then
  fail "antsibull-docs" "exit $rc, $(wc -l <"$work/antsibull.log") line(s) of findings"
fi

step "4/4 ansible-builder create and introspect ($(pip show ansible-builder 2>/dev/null | sed -n 's/^Version: //p'))"
mkdir -p "$work/ee/collections"
cp "$here/execution-environment.yml" "$work/ee/"
cp "$tarball" "$work/ee/collections/"
if ! (cd "$work/ee" && ansible-builder create -f execution-environment.yml -c context \
  --output-filename Containerfile 2>&1); then
  fail "ansible-builder create"
fi
for made in Containerfile _build/requirements.yml "_build/collections/$(basename "$tarball")"; do
  [ -e "$work/ee/context/$made" ] || fail "ansible-builder create" "the context lacks $made"
done
ansible-builder introspect --sanitize "$work/collections" >"$work/introspect.log" 2>&1 ||
  fail "ansible-builder introspect"
sed -n '/python:/,$p' "$work/introspect.log"
for dep in numpy highspy nvidia-ml-py gguf openssh-client; do
  grep -q "$dep" "$work/introspect.log" || fail "ansible-builder introspect" "$dep not found"
done

step "shellcheck: the test command's scripts"
(cd "$repo" && shellcheck -x .ci/run tests/run.sh tests/ecosystem/check.sh) || fail "shellcheck"

step "done in $((SECONDS - started)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "ecosystem checks failed: ${failed[*]}"
  exit 1
fi
echo "ecosystem checks passed: galaxy-importer, ansible-test sanity, antsibull-docs, ansible-builder"
