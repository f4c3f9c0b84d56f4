"""Tests for core/verify/tls: enumeration of versions, suites, order, groups and grades."""
