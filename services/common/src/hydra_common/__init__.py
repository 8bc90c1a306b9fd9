"""Hydra common."""
