"""Hydra api."""
