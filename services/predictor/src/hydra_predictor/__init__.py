"""Hydra predictor."""
