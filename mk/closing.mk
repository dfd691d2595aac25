# The lingering close (issue 13): 1,000 tries per case of a close wsrelay starts while the peer
# keeps sending (1009, 1007, 1002 twice, idle and slow-consumer 1008, drain 1001/1012, a proxy's
# 1014, 1009 toward an upstream). Not in `make test`, which runs a few hundred tries.
#   make test-closing [CLOSING_TRIES=1000] [CLOSING_CASES="too_big idle"]
.PHONY: test-closing

CLOSING_TRIES ?= 1000
CLOSING_CASES ?=

test-closing: install-test
	$(BIN)/python -m tests.closing.cases --tries $(CLOSING_TRIES) $(CLOSING_CASES)
