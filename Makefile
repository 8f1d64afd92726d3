# Thin wrappers over the npm scripts, for operators used to make. `make help` lists the targets.
IMAGE ?= pocket-relay-miner
TAG ?= latest
DOCKER ?= docker
TILT ?= tilt

.DEFAULT_GOAL := help
.PHONY: help install build test conformance deploy-test lint typecheck bench proto image k8s-render tilt-up tilt-down ci clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

install: ## clean install of the dependencies (npm ci)
	npm ci

build: ## compile to dist/ (tsc + runtime assets)
	npm run build

test: ## every test (vitest; the Redis tests need redis-server on 127.0.0.1:6379)
	npm test

conformance: ## the upstream protocol conformance vectors only
	npm run test:conformance

deploy-test: ## checks of the Dockerfile, k8s manifests, Tiltfile and Grafana dashboard
	npx vitest run test/deploy

lint: ## eslint and prettier --check
	npm run lint

typecheck: ## tsc --noEmit
	npm run typecheck

bench: ## benchmarks (see bench/)
	npm run bench

proto: ## regenerate the protobuf code
	npm run proto

image: ## build the container image $(IMAGE):$(TAG)
	$(DOCKER) build -t $(IMAGE):$(TAG) .

k8s-render: ## print the dev overlay as applied by Tilt (needs kubectl)
	kubectl kustomize k8s/overlays/dev

tilt-up: ## start the dev stack on the current local cluster
	$(TILT) up

tilt-down: ## delete the dev stack
	$(TILT) down

ci: ## what CI runs
	bash .ci/run

clean: ## remove build output and reports
	rm -rf dist reports coverage
