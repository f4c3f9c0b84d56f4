"""Benchmarks: scripts run by hand (`python bench/<name>.py`), never by the test suite."""
