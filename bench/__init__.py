"""Hydra's benchmarks: figures are ratios or costs per item measured within one run."""
