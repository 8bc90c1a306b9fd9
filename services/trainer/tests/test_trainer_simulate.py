"""The hall simulator: catalogs, naming convention, truth sidecars, visible problems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hydra_trainer.catalog import hall_catalog
from hydra_trainer.plots import make_plot
from hydra_trainer.render import HEIGHT, WIDTH
from hydra_trainer.simulate import SimulationConfig, read_truth, run_simulation, write_labelled_set


@pytest.mark.parametrize(("hall", "n"), [("demo", 6), ("hallb", 73), ("halld", 15), ("epic", 568)])
def test_catalog_sizes_and_unique_names(hall: str, n: int) -> None:
    specs = hall_catalog(hall)
    assert len(specs) == n
    assert len({s.name for s in specs}) == n
    assert all("Good" in s.labels and "Bad" in s.labels and s.detector for s in specs)


def test_unknown_hall_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown hall"):
        hall_catalog("hallz")


def test_live_simulation_writes_hall_naming_and_sidecars(tmp_path: Path) -> None:
    specs = hall_catalog("demo")
    cfg = SimulationConfig(
        out_dir=tmp_path,
        plot_types=specs,
        bad_fraction=0.5,
        interval=0.0,
        runs=2,
        chunks_per_run=2,
        seed=7,
        run_period="2021-08",
    )
    written = run_simulation(cfg, sleep=lambda _: None)
    assert written == 2 * 2 * len(specs)
    pngs = sorted(tmp_path.rglob("*.png"))
    assert len(pngs) == written
    first = tmp_path / "RunPeriod-2021-08" / "Run5000" / "ECAL_adcOccupancy_0001.png"
    assert first in pngs
    assert (tmp_path / "RunPeriod-2021-08" / "Run5001").is_dir()
    truth = read_truth(first)
    assert truth is not None and truth["run_number"] == 5000 and truth["chunk"] == 1
    assert truth["label"] in ("Good", "Bad", "NoData")
    with Image.open(first) as img:
        assert img.size == (WIDTH, HEIGHT)
    labels = {json.loads(p.read_text())["label"] for p in tmp_path.rglob("*.truth.json")}
    assert "Bad" in labels and "Good" in labels
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind


def test_count_and_once_limits(tmp_path: Path) -> None:
    specs = hall_catalog("demo")
    assert run_simulation(SimulationConfig(tmp_path / "a", specs, count=4, interval=0)) == 4
    assert run_simulation(SimulationConfig(tmp_path / "b", specs, once=True, truth=False)) == 6
    assert not list((tmp_path / "b").rglob("*.json"))


def test_dead_sector_is_empty_inside_its_box() -> None:
    spec = next(s for s in hall_catalog("demo") if s.kind == "occupancy_disc")
    rng = np.random.default_rng(0)
    good, _ = make_plot(spec, "Good", rng)
    for _ in range(10):
        img, truth = make_plot(spec, "Bad", rng)
        if truth.defect == "dead_sector":
            break
    assert truth.defect == "dead_sector" and truth.box is not None
    x0, y0, x1, y1 = truth.box
    assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT

    def white_fraction(image: Image.Image) -> float:
        region = np.asarray(image)[y0:y1, x0:x1]
        return float((region.min(axis=2) > 250).mean())

    assert white_fraction(img) > white_fraction(good) + 0.2


def test_labelled_set_layout(tmp_path: Path) -> None:
    spec = hall_catalog("demo")[1]
    written = write_labelled_set(tmp_path, spec, {"Good": 3, "Bad": 2}, seed=1)
    assert written == {"Good": 3, "Bad": 2}
    assert len(list((tmp_path / "Bad").glob("*.png"))) == 2
    bad = next((tmp_path / "Bad").glob("*.png"))
    truth = read_truth(bad)
    assert truth is not None and truth["label"] == "Bad" and truth["box"] is not None
