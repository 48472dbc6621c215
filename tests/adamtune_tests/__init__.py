"""Tests of the adamtune package: API, CLI, layers, packaging (a package, as each room's tests are)."""
