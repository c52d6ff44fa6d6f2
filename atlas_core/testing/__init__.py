"""Test helpers for NeRF Atlas and its plugin authors (a pytest plugin: see fixtures)."""
