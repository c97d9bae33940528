# Infusion Bridge — developer entry points. `make help` lists them.
SHELL := bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SANDBOX := sandbox/hapi/sandbox.sh
IDP := sandbox/keycloak/keycloak.sh
# make run: the service's SMART Backend Services key, kept outside the repository
EHR_KEY ?= $(HOME)/.config/infusion-bridge/ehr-backend.pem
# the local HAPI demands tokens from the demo realm (HAPI_AUTH_ISSUER= make run: an open HAPI)
HAPI_AUTH_ISSUER ?= http://127.0.0.1:8180/realms/infusion-bridge

.DEFAULT_GOAL := help
.PHONY: help install system-deps interop-deps run test unit lint format sandbox-start sandbox-stop sandbox-status bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@echo "==> creating $(VENV) and installing Infusion Bridge with its dev tools"
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is required"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

install: $(BIN)/.installed ## create the virtualenv and install the project (once)

run: install sandbox-start ## run the service on 127.0.0.1:8000 against the local HAPI sandbox and demo sign-in
	@test -f "$(EHR_KEY)" || $(BIN)/infusion-bridge keys generate --out "$(EHR_KEY)"
	@echo "==> starting Infusion Bridge (Ctrl-C to stop; the sandboxes keep running: make sandbox-stop)"
	@INFUSION_EHR_CLIENT_ID="$${INFUSION_EHR_CLIENT_ID-infusion-bridge-backend}" \
		INFUSION_EHR_PRIVATE_KEY_PATH="$${INFUSION_EHR_PRIVATE_KEY_PATH:-$(EHR_KEY)}" \
		$(BIN)/infusion-bridge serve

system-deps: ## install Chromium, PostgreSQL, ab and hey from Debian if missing (tests, bench)
	@bash scripts/system-deps.sh

interop-deps: system-deps ## build the interop suite's clients (HAPI client via Maven, fhir-kit-client via npm ci)
	@bash tests/interop/build.sh

test: install system-deps interop-deps ## every test: unit, API, interop clients, integration (sandbox, PostgreSQL), browser
	@$(BIN)/pytest

unit: install ## only the tests that need no sandbox and no Java/Node client
	@$(BIN)/pytest -m 'not integration and not interop'

lint: install ## ruff (lint + format check) and mypy
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache --config pyproject.toml

format: install ## apply ruff's formatting and safe fixes
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

sandbox-start: ## build (if needed) and start the HAPI FHIR R4 sandbox on :8080 and Keycloak on :8180
	@HAPI_AUTH_ISSUER="$(HAPI_AUTH_ISSUER)" bash $(SANDBOX) start
	@bash $(IDP) start

sandbox-stop: ## stop the HAPI sandbox and Keycloak
	@bash $(SANDBOX) stop
	@bash $(IDP) stop

sandbox-status: ## are the sandboxes running?
	@bash $(SANDBOX) status; bash $(IDP) status

bench: install system-deps ## run the benchmarks in bench/ (starts what they need)
	@$(BIN)/python -m bench

clean: ## remove the virtualenv, caches and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache test-artifacts
