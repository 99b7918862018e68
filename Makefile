# teamllm.stack: the two commands a new user needs, and the pieces they are made of.
#   make lab    bring up the built-in lab, converge site.yml, print a real completion and
#               Open WebUI's address and login
#   make test   run every test (lint, unit, collection build, ecosystem checks, molecule)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export TEAMLLM_CACHE ?= $(HOME)/.cache/teamllm
export TEAMLLM_MIRROR ?= $(TEAMLLM_CACHE)/mirror
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: lab lab-down test lint unit build ecosystem molecule venv collection-link lock

venv: $(VENV)/.requirements-stamp collection-link

$(VENV)/.requirements-stamp: requirements.txt
	@echo "[make] installing the pinned tooling into $(VENV) (about a minute the first time)"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	cp requirements.txt $@

# Pin the tooling again after a change of requirements.in: requirements.txt with every package
# and the sha256 of each of its files, as PyPI publishes them (the machine's own indexes and
# find-links are left out). Pins already in requirements.txt are kept; `make lock
# LOCK_ARGS=--upgrade` takes the newest versions requirements.in allows.
lock: venv
	PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_CONSTRAINT= CUSTOM_COMPILE_COMMAND="make lock" \
	  $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) --output-file requirements.txt requirements.in

# The repository is the collection: make it resolvable as teamllm.stack.
collection-link:
	@mkdir -p .collections/ansible_collections/teamllm
	@ln -sfn ../../.. .collections/ansible_collections/teamllm/stack

lab: venv
	bash lab/lab.sh up

lab-down:
	bash lab/lab.sh down

test: venv
	bash tests/run.sh all

lint: venv
	bash tests/run.sh lint

unit: venv
	bash tests/run.sh unit

build: venv
	bash tests/run.sh build

ecosystem: venv
	bash tests/run.sh ecosystem

molecule: venv
	bash tests/run.sh molecule
