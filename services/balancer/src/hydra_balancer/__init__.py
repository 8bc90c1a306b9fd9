"""Hydra balancer."""
