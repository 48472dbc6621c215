"""Benchmarks of adamtune's training loop, pruning, study efficiency and study store.

Each is run from the repository root as `python -m benchmarks.NAME` and prints its headline ratio
as its last line (`ratio: 7.3x`); results and their context are in benchmarks/RESULTS.md.
Benchmarks are never part of the test suite: nothing here is collected by pytest.
"""
