"""Tests: hub."""
