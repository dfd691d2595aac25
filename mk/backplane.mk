# Backplane part (issue 4): rooms across replicas through Redis.
#   make bench-backplane        3 replicas on one private redis-server vs 1 in-memory replica
#                               (a few minutes): bench/backplane/RESULTS.md and results.json
#   make bench-backplane-quick  a tiny run that only checks the harness (in the temp folder)
.PHONY: bench-backplane bench-backplane-quick

bench-backplane: $(VENV)/.stamp-bench system-deps
	$(BIN)/python -m bench.backplane

bench-backplane-quick: $(VENV)/.stamp-bench system-deps
	$(BIN)/python -m bench.backplane --quick

# Issue 15: what Redis spends per message (redis_cost.json), then 3 replicas on one Redis vs
# on a 3-master Redis Cluster, side by side (about 6 minutes): bench/backplane/CLUSTER.md.
.PHONY: bench-backplane-cluster

bench-backplane-cluster: $(VENV)/.stamp-bench system-deps
	$(BIN)/python -m bench.backplane.redis_cost
	$(BIN)/python -m bench.backplane.cluster
