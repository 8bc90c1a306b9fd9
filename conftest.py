"""Root conftest: shared fixtures live in hydra_testsupport.mysql."""

pytest_plugins = ["hydra_testsupport.mysql"]
