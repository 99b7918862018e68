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

.PHONY: lab lab-down test lint unit build ecosystem molecule venv collection-link

venv: $(VENV)/.requirements-stamp collection-link

$(VENV)/.requirements-stamp: requirements.txt
	@echo "[make] installing the pinned tooling into $(VENV) (about a minute the first time)"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	cp requirements.txt $@

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
