"""Hydra trainer: datasets, training, evaluation, export, and the hall simulator."""

__version__ = "0.1.0"
