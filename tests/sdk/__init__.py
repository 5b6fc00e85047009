"""Tests: sdk."""
