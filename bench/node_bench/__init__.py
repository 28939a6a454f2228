"""Measurements on the real node, for bench_node.py (see README.md)."""
