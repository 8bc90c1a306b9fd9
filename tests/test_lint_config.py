"""The one strict mypy run covers every package, its tests, tests/ and bench/."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _mypy() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return config


def test_mypy_path_names_every_package_source_folder() -> None:
    """A package left out of mypy_path gets the name services.<x>.src.hydra_<x> in the run."""
    mypy = _mypy()
    sources = {str(p.relative_to(ROOT)) for p in ROOT.glob("services/*/src")}
    assert mypy["explicit_package_bases"] is True
    assert set(mypy["mypy_path"]) == sources


def test_the_run_is_strict_over_packages_tests_and_bench() -> None:
    mypy = _mypy()
    assert mypy["strict"] is True
    assert mypy["files"] == ["services/*/src", "services/*/tests", "tests", "bench"]
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "\t$(VENV)/bin/mypy  #" in lint  # plain mypy: the files above, one run
    relaxed = [o for o in mypy["overrides"] if "strict" in o or "ignore_errors" in o]
    # Only the generated stubs and TensorFlow's own modules are not checked.
    assert {m for o in relaxed for m in o["module"]} == {
        "hydra.v1.*",
        "tensorflow.*",
        "tensorflow_serving.*",
    }
