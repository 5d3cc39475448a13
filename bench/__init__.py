"""Benchmarks (``make bench``); results are committed under bench/results/."""
