"""Tests: connect."""
