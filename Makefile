# release-readiness: `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BASE ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# Development-only code (operator/release_readiness_dev) is not in the installed package: run it from the tree.
DEV := PYTHONPATH=operator $(PY)
STAMP := $(VENV)/.installed
BIN := $(CURDIR)/bin
export PATH := $(BIN):$(CURDIR)/$(VENV)/bin:$(PATH)
CLUSTER_DIR ?= $(CURDIR)/.cluster
PYTEST_ARGS ?=

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Setup

$(STAMP): pyproject.toml
	@command -v $(PYTHON_BASE) >/dev/null || { echo "error: $(PYTHON_BASE) not found; set PYTHON_BASE=/path/to/python3.11+" >&2; exit 1; }
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create the virtualenv from pyproject.toml (.venv).

.PHONY: tools
tools: ## Build etcd, kube-apiserver, kubectl and helm from Go modules into bin/ (cached by version).
	bash hack/build-tools.sh

.PHONY: prometheus
prometheus: ## Install Prometheus and promtool from Debian's packages when missing (for metric-gate tests).
	bash hack/install-prometheus.sh

.PHONY: chromium
chromium: ## Install Chromium from Debian's packages when missing (the dashboard's browser tests).
	bash hack/install-chromium.sh

.PHONY: image-tools
image-tools: ## Install buildah, skopeo and mmdebstrap from Debian's packages when missing (for `make image`).
	bash hack/install-image-tools.sh

##@ Development

.PHONY: manifests
manifests: $(STAMP) tools ## Generate crds/, the default checklist, its coverage doc, the chart's copies and deploy/base.
	$(PY) hack/seed_checklist.py operator/release_readiness/data/pre-production-checklist.md > deploy/checklists/pre-production.yaml
	cp deploy/checklists/pre-production.yaml operator/release_readiness/data/pre-production.yaml
	$(MAKE) coverage
	$(DEV) -m release_readiness_dev.crdgen crds
	$(PY) hack/dashboard.py
	bash hack/render-kustomize.sh

.PHONY: coverage
coverage: $(STAMP) ## Generate docs/checklist-coverage.md from the default checklist.
	$(PY) -m release_readiness.coverage deploy/checklists/pre-production.yaml docs/checklist-coverage.md

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format check) and mypy --strict.
	$(VENV)/bin/ruff check operator tests hack bench
	$(VENV)/bin/ruff format --check operator tests hack bench
	$(VENV)/bin/mypy

.PHONY: fmt
fmt: $(STAMP) ## Format the code with ruff.
	$(VENV)/bin/ruff check --fix operator tests hack bench
	$(VENV)/bin/ruff format operator tests hack bench

.PHONY: unit
unit: $(STAMP) prometheus ## Unit tests (no cluster; promtool checks the alert rules).
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: integration
integration: $(STAMP) tools prometheus chromium ## Integration tests against a real etcd + kube-apiserver.
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

.PHONY: test
test: lint ## Lint, unit and integration tests, with all their set-up (CI also runs `make test-image`).
	$(MAKE) tools prometheus chromium
	$(PY) -m pytest tests --ignore=tests/image $(PYTEST_ARGS)

.PHONY: bench-tools
bench-tools: ## Build the benchmarks' load generator (vegeta) from its Go module into bin/ (cached by version).
	bash hack/build-tools.sh vegeta

.PHONY: bench-kyverno-tools
bench-kyverno-tools: ## Build Kyverno v1.19.1 (the peer of `make bench BENCH=kyverno`) from its Go module into bin/ (cached by version; the first build takes long).
	bash hack/build-tools.sh kyverno

.PHONY: bench
bench: $(STAMP) tools bench-tools ## Benchmarks that print figures (no assertions on time); BENCH=kyverno builds Kyverno first.
	$(if $(filter kyverno,$(BENCH)),$(MAKE) bench-kyverno-tools)
	$(DEV) -m bench $(BENCH)

##@ Local cluster

.PHONY: cluster
cluster: $(STAMP) tools ## Start etcd + kube-apiserver in the background; writes .cluster/kubeconfig.
	$(DEV) -m release_readiness_dev.localcluster start --dir $(CLUSTER_DIR) --background
	KUBECONFIG=$(CLUSTER_DIR)/kubeconfig $(DEV) -m release_readiness_dev.stale

.PHONY: cluster-down
cluster-down: $(STAMP) ## Stop the background cluster started by `make cluster`.
	$(DEV) -m release_readiness_dev.localcluster stop --dir $(CLUSTER_DIR)

.PHONY: install
install: $(STAMP) tools ## Apply the CRDs and the default checklist to the cluster in KUBECONFIG.
	$(DEV) -m release_readiness_dev.stale
	bin/kubectl apply --server-side --force-conflicts -f crds/
	bin/kubectl wait --for=condition=Established --timeout=60s -f crds/
	bin/kubectl apply --server-side --force-conflicts -f deploy/checklists/

.PHONY: run
run: $(STAMP) tools ## Run the operator and webhook (against KUBECONFIG, or a local control plane) with the sample release.
	$(DEV) -m release_readiness_dev.devrun

##@ Deployment

.PHONY: image
image: image-tools ## Build the operator image with buildah (no Docker engine) into dist/release-readiness-<version>.oci.tar.
	bash hack/build-image.sh

.PHONY: test-image
test-image: $(STAMP) tools image ## Run the built image's entrypoint against a local control plane (tests/image).
	$(PY) -m pytest tests/image $(PYTEST_ARGS)

.PHONY: build-installer
build-installer: tools ## Render deploy/install.yaml (one file: CRDs, operator, default checklist) from deploy/.
	bin/kubectl kustomize deploy > deploy/install.yaml
	@echo "wrote deploy/install.yaml"

.PHONY: krew
krew: $(STAMP) ## Build the kubectl plugin's krew archive into dist/ and write its sha256 into plugins/readiness.yaml.
	$(PY) hack/krew_archive.py

.PHONY: helm-install
helm-install: tools ## helm install the chart into the KUBECONFIG cluster (namespace release-readiness).
	bin/helm upgrade --install release-readiness charts/release-readiness -n release-readiness --create-namespace
