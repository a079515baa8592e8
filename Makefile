# Every target creates .venv on first use and installs the project into it, so a fresh
# clone needs only `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench bench-ab soak sim session clean system-packages bench-packages

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' || { \
	  echo "error: bpx-flows needs Python 3.11 or 3.12 (Bytewax 0.21.1, its last release," \
	       "has no wheel for $$($(PY) -V 2>&1)); run e.g. make PY=python3.12 ..."; exit 2; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## the market flow on the built-in simulator, for DEMO_SECONDS
	$(BIN)/bpx-flows demo --seconds $${DEMO_SECONDS:-15}

test: lint typecheck system-packages  ## format check, lint, types, then the whole suite
	$(BIN)/python -m pytest -q -n $${TEST_PROCESSES:-2}  # TEST_PROCESSES=0: one process

# Real components the tests start: Prometheus (the dashboards' test) and Chromium
# (the report's test). Debian's packages, installed when missing.
system-packages:
	@missing=""; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (Debian packages) for the tests"; \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing (sudo apt-get install$$missing; their tests are skipped locally, fail on CI)"; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) bench-packages  ## results are printed and written to out/bench.json
	$(BIN)/python -m bench.run

# Valgrind counts the book flow's instructions (bench/instructions.py): Debian's
# package, installed when missing; without it that case is skipped.
bench-packages:
	@command -v valgrind >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing valgrind (Debian package) for make bench"; \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null; \
	  else \
	    echo "missing: valgrind (sudo apt-get install valgrind; make bench skips its instruction counts)"; \
	  fi; \
	}

soak: $(STAMP)  ## a simulated hour of 100 markets with faults (~2 min; SOAK_MINUTES)
	$(BIN)/python -m bench.soak --sim-minutes $${SOAK_MINUTES:-60} --speed 30

sim: $(STAMP)  ## the simulator in the foreground on fixed ports
	$(BIN)/bpx-flows sim --port 8765

session: $(STAMP)  ## re-record the shipped session from the simulator over the wire (30 s)
	BPX_API_SECRET=$$($(BIN)/python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())") \
	$(BIN)/bpx-flows record --out data/sessions/sim-session.jsonl.gz --seconds 30 \
	  trade.SOL_USDC depth.SOL_USDC bookTicker.SOL_USDC kline.1m.SOL_USDC ticker.SOL_USDC \
	  depth.200ms.SOL_USDC_PERP trade.SOL_USDC_PERP markPrice.SOL_USDC_PERP \
	  openInterest.SOL_USDC_PERP trade.BTC_USDC_PERP depth.BTC_USDC_PERP liquidation \
	  account.orderUpdate account.positionUpdate account.rfqUpdate

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Before and after side by side in one run: BEFORE is a git revision (e.g. HEAD~3).
bench-ab: $(STAMP)
	@test -n "$(BEFORE)" || { echo "usage: make bench-ab BEFORE=<git revision>"; exit 2; }
	rm -rf out/before && git worktree prune && git worktree add --detach out/before $(BEFORE)
	$(BIN)/python -m bench.ab out/before $${AB_ROUNDS:-3}; status=$$?; \
	  git worktree remove --force out/before; exit $$status
