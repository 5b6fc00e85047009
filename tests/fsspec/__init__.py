"""Tests: fsspec."""
