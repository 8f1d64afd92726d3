# Thin wrappers over the npm scripts, for operators used to make.
.PHONY: install build test conformance lint typecheck bench proto clean ci

install:
	npm ci

build:
	npm run build

test:
	npm test

conformance:
	npm run test:conformance

lint:
	npm run lint

typecheck:
	npm run typecheck

bench:
	npm run bench

proto:
	npm run proto

ci:
	bash .ci/run

clean:
	rm -rf dist reports coverage
