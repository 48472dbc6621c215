"""Reliability scenarios: workers, stores, full disks (a package, as each room's tests are)."""
