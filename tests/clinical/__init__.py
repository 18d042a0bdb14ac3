"""Tests of the pure clinical rules."""
