"""Hydra modelserver."""
