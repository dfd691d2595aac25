"""Benchmark harness for wsrelay and its peers (issue 7): `python -m bench --help`."""
