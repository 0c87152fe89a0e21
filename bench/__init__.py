"""Benchmarks of Tablestack against the peers users would pick instead (see bench/README.md)."""
