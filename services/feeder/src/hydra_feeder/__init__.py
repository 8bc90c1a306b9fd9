"""Hydra feeder."""
