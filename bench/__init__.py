"""Benchmarks for Infusion Bridge (``make bench`` = ``python -m bench``); see docs/benchmarks.md."""
