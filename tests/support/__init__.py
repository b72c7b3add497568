"""Helpers shared by the test suites (databases, servers, browsers)."""
