"""Benchmarks: Puente against floors measured in the same run (see bench/README.md)."""
