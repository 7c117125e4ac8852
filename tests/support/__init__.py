"""Test helpers: fakes, rigs and servers the tests share (not tests themselves)."""
