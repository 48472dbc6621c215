"""Tests of the results room (a package: module names such as test_bad_input.py repeat across rooms)."""
