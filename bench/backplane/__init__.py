"""Backplane benchmark (issue 4): rooms on 3 replicas sharing one Redis vs 1 in-memory replica.

`python -m bench.backplane --help`; method and results in bench/backplane/RESULTS.md.
"""
