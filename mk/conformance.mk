# Conformance and hardening part: Autobahn|Testsuite (wstest, Python 2.7 in its own virtualenv
# made by scripts/autobahn/setup.sh), fuzzing, churn and soak.
.PHONY: autobahn-env conformance conformance-full soak

# The whole suite runs Autobahn cases 1-11: make the Python 2.7 env before pytest starts.
test: autobahn-env

# No Python 2.7 here: the conformance tests skip, naming the reason; the rest of the suite runs.
autobahn-env:
	@bash scripts/autobahn/setup.sh >/dev/null || echo "autobahn-env: not set up (see above)"

# Cases 1-11 against the echo route, a proxy route and wsrelay's own client, side by side
# (under half a minute on 2 cores).
conformance: install-test autobahn-env
	$(BIN)/pytest tests/conformance -v

# Every case, compression (12.*, 13.*) included, against a compressing echo route, the
# compressing client and proxy routes (plain for 1-11, compressing for 12-13); the results
# table is written to docs/conformance.md.
conformance-full: install-test autobahn-env
	$(BIN)/python -m tests.conformance.full --sides echo client proxy --markdown docs/conformance.md

# A longer churn run than the one in `make test` (about 3 minutes); the report goes to
# test-artifacts/soak.md.
SOAK_CYCLES ?= 100000
soak: install-test
	$(BIN)/python -m tests.churn.soak --cycles $(SOAK_CYCLES) --report test-artifacts/soak.md
