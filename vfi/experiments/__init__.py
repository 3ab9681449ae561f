"""Experiments built on training and evaluation (they import both; nothing imports them)."""
