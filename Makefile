# OpsSeer developer entry points. `make demo` and `make test` install what is missing first, idempotently:
# the Debian packages of the local stack and a virtualenv with torch==2.13.0 installed before anything else
# (a requirement that lets pip choose torch would pull a multi-GB CUDA build).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION := 2.13.0
DEBIAN_PACKAGES := prometheus prometheus-alertmanager redis-server postgresql
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
STAMP := $(VENV)/.opsseer-installed
# Public evaluation data (time series, runbooks, webhook payloads, speech clips), read in place, never copied:
# beside the checkout, or at the development machines' shared location. Tests that need it skip without it.
OPSSEER_CORPUS_DIR ?= $(firstword $(wildcard $(abspath $(CURDIR)/../shared/corpus) /work/shared/corpus))
export OPSSEER_CORPUS_DIR

.PHONY: setup debs venv test rules-test demo up bench clean

setup: debs venv

# policy-rc.d exit code 101 keeps the packages' own services from starting during the install: the stack
# runs its own private instances on other ports.
debs:
	@missing=""; for package in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  created_policy=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; $(SUDO) chmod +x /usr/sbin/policy-rc.d; created_policy=1; \
	  fi; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; status=$$?; \
	  if [ -n "$$created_policy" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
	  exit $$status; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[ai,dev]'
	@touch $@

rules-test: debs
	promtool test rules alerting/tests/*.test.yml

test: setup rules-test
	$(VENV)/bin/python -m pytest

demo: setup
	$(VENV)/bin/opsseer demo

up: setup
	$(VENV)/bin/opsseer up

bench: setup
	$(VENV)/bin/python bench/ingest.py
	$(VENV)/bin/python bench/forecaster.py
	$(VENV)/bin/python bench/docqa.py
	$(VENV)/bin/python bench/asr.py

# Deletes the local stack's state, including PostgreSQL data kept under /var/lib/opsseer, and the virtualenv.
clean:
	@if [ -d .opsseer ] && [ -x $(VENV)/bin/opsseer ]; then $(VENV)/bin/opsseer purge --yes --state-dir .opsseer; fi
	rm -rf $(VENV) .opsseer .pytest_cache
