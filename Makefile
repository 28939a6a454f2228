# The two commands a newcomer needs are `make up` (the local stack) and `make test` (every test).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-node setup-prometheus setup-postgres setup-seaweedfs control-plane test test-unit crds up clean

setup:  ## Python environment (.venv), the control-plane binaries and helm (built once, cached in ~/.cache)
	hack/setup-python.sh
	hack/control-plane-binaries.sh >/dev/null
	hack/helm.sh >/dev/null

setup-node:  ## The node's packages and binaries, every deployable's image from its Dockerfile, the test browser (cached)
	hack/node-packages.sh
	hack/node-binaries.sh >/dev/null
	hack/images.sh build >/dev/null
	hack/browser-packages.sh

setup-prometheus:  ## The real Prometheus server, built once from its Go module (cached in ~/.cache)
	hack/prometheus.sh >/dev/null

setup-seaweedfs:  ## The real S3-compatible server (SeaweedFS) the model store's S3 backend is tested against, built once from its Go module (cached in ~/.cache)
	hack/seaweedfs.sh >/dev/null

setup-postgres:  ## PostgreSQL from Debian's packages, for the model store's catalog tests (installed once)
	hack/postgres.sh >/dev/null

control-plane:  ## Build (once) or find etcd, kube-apiserver, kube-controller-manager, kubectl
	hack/control-plane-binaries.sh

test: setup setup-node setup-prometheus setup-postgres setup-seaweedfs  ## Every test suite: integration against a real kube-apiserver, the node suite on a real kubelet
	$(PY) -m pytest tests

test-unit:  ## Only the tests that need neither the control plane, the node nor the image builder
	hack/setup-python.sh
	$(PY) -m pytest tests -m "not integration and not node and not images"

crds:  ## Regenerate crds/ (and the chart's copy) and docs/api.md from the pydantic models
	$(PY) -m mlfunctions_operator.crdgen crds --docs docs/api.md
	# Helm installs CRDs from the chart's crds/: keep it byte-identical to crds/ (tests/chart checks it).
	rm -f charts/mlfunctions/crds/*.yaml
	cp crds/*.yaml charts/mlfunctions/crds/

clean:
	rm -rf $(VENV) .pytest_cache

up: setup setup-prometheus  ## The whole stack on this machine: control plane, operator, model store, runtime, gateway (FRESH=1: from scratch)
	$(PY) -m mlfunctions_stack up

down:  ## Stop the `make up` running with .stack/ (from any terminal), and whatever a killed one left
	$(PY) -m mlfunctions_stack down
