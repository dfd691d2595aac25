# Benchmarks (issues 7 and 14): wsrelay against its peers, server on core 0, load client on core 1.
#   make bench          full run (~12 min): bench/RESULTS.md, bench/results/ (raw data, charts)
#   make bench-quick    short run (~3 min) to check the harness: bench/.work/quick/
#   make bench-profile  py-spy (+ perf) profiles of wsrelay under the W1 and W5 loads: bench/results/profile-w*
#   make bench-report   re-render bench/RESULTS.md from bench/results/raw.jsonl (and NOTES.md)
#   make bench-instructions  user-space instructions per message under callgrind (~1 min): a
#                       figure machine noise does not move; bench/results/instructions.md
.PHONY: bench bench-quick bench-profile bench-report bench-deps bench-instructions

NODE_PEER := bench/peers/node

$(VENV)/.stamp-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

# The Node `ws` peer and cross-check client, from the lockfile; skipped (loudly) without npm.
$(NODE_PEER)/node_modules/.package-lock.json: $(NODE_PEER)/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd $(NODE_PEER) && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "bench: npm not found: the Node ws peer and client will be reported as skipped"; fi

bench-deps: $(VENV)/.stamp-bench $(NODE_PEER)/node_modules/.package-lock.json

# The harness smoke test (tests/bench/) needs the load client's picows and the chart code.
install-test: $(VENV)/.stamp-bench

bench: bench-deps
	$(BIN)/python -m bench

bench-quick: bench-deps
	$(BIN)/python -m bench --quick

bench-profile: bench-deps
	$(BIN)/python -m bench.profile --perf
	$(BIN)/python -m bench.profile --size 16384 --type binary
	$(BIN)/python -m bench.profile --target proxy --perf

bench-instructions: bench-deps
	$(BIN)/python -m bench.instructions --out bench/results/instructions.md

bench-report: bench-deps
	$(BIN)/python -m bench --report-only
