"""Root conftest: shared fixtures live in hydra_common.testing."""

pytest_plugins = ["hydra_common.testing"]
