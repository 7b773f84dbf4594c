"""A small vendor that is not built in, for the discovery test: see test_discovery.py."""
