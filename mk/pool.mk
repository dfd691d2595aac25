# The outbound pool (issue 3): proxy and feed routes against `websockets` upstream processes.
#   make test-pool    tests/pool only (about a minute); `make test` runs them too
.PHONY: test-pool

test-pool: install-test
	$(BIN)/pytest tests/pool tests/unit/test_closecodes.py
