"""Tests of the search_spaces room (a package: module names such as test_bad_input.py repeat across rooms)."""
