# SAPA — the two commands a newcomer needs are `make run` and `make test`.
# Each creates or updates the virtual environment first (Python 3.11+ is all it needs).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv run test demo bench lint format lock clean bundle audit terraform-check

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

## Serve the whole pipeline on http://127.0.0.1:$${PORT:-8080}; data under $${SAPA_DATA_DIR:-./var}
run: venv
	$(BIN)/python -m sapa.dev.localserver

## The whole test suite (what CI runs)
test: venv
	$(BIN)/python -m pytest

## The deploy bundle every Cloud Function runs from: dist/sapa-functions.zip (deterministic).
## Ship the office's staff file with it (it seeds the officers on the first start; later they
## are managed in the admin pages): `make bundle STAFF_FILE=path/to/staff.toml`, and the
## internal CA of the BSrE service if it has one: `BSRE_CA=path/to/ca.pem`.
bundle: venv
	$(BIN)/python scripts/bundle.py $(if $(STAFF_FILE),--staff-file $(STAFF_FILE)) $(if $(BSRE_CA),--bsre-ca $(BSRE_CA))

## One request through all eight SOP steps over HTTP (uses a running `make run`, or starts one)
demo: venv
	$(BIN)/python -m sapa.dev.demo

## Benchmarks on the embedded stack, each figure next to a floor; JSON under var/bench/
## (pass options with ARGS, e.g. `make bench ARGS="--only webhook --quick"`)
bench: venv
	$(BIN)/python -m bench.run $(ARGS)

## Known vulnerabilities in requirements.lock (pip-audit; OSV, else PyPI). Fails on one with a
## fix available; says so and passes when no vulnerability service can be reached
## (SAPA_REQUIRE_AUDIT=1 fails then too).
audit: venv
	$(BIN)/python -m tests.security.pip_audit_gate

## terraform fmt -check and terraform validate on infra/, offline, against the google and
## google-beta provider schemas (also part of `make test`; how: infra/README.md)
terraform-check: venv
	$(BIN)/python scripts/terraform_check.py all infra

lint: venv
	$(BIN)/ruff check shared functions tests scripts
	$(BIN)/ruff format --check shared functions tests scripts
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format shared functions tests scripts
	$(BIN)/ruff check --fix shared functions tests scripts

## Re-pin dependency versions after changing pyproject.toml
lock: venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^sapa' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
