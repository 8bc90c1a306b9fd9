"""The simulator's hard mode: subtle defects that still have boxes, and label noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from hydra_trainer.catalog import PlotTypeSpec, hall_catalog
from hydra_trainer.cli import register
from hydra_trainer.plots import make_density, make_plot
from hydra_trainer.render import FRAME, HEIGHT, WIDTH
from hydra_trainer.simulate import read_truth, write_labelled_set

DEMO = {s.kind: s for s in hall_catalog("demo")}


def _box_area(box: list[int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def test_every_hard_bad_plot_has_a_box_on_the_canvas() -> None:
    rng = np.random.default_rng(1)
    for spec in hall_catalog("demo"):
        for _ in range(6):
            image, truth = make_plot(spec, "Bad", rng, hard=True)
            assert image.size == (WIDTH, HEIGHT)
            assert truth.box is not None and truth.defect, spec.name
            x0, y0, x1, y1 = truth.box
            assert 0 <= x0 < x1 <= WIDTH and 0 <= y0 < y1 <= HEIGHT


def test_hard_dead_region_is_a_few_channels_not_a_sector() -> None:
    spec = DEMO["occupancy_disc"]
    rng = np.random.default_rng(2)
    hard = [make_plot(spec, "Bad", rng, hard=True)[1] for _ in range(12)]
    normal = [make_plot(spec, "Bad", rng)[1] for _ in range(12)]
    # A Bad disc is a dead region or (a quarter of them) a hot channel.
    assert {t.defect for t in hard} <= {"dead_channels", "hot_channel"}
    hard = [t for t in hard if t.defect == "dead_channels"]
    normal = [t for t in normal if t.defect == "dead_sector"]
    assert hard and normal
    hard_area = max(_box_area(t.box) for t in hard if t.box)
    normal_area = min(_box_area(t.box) for t in normal if t.box)
    assert hard_area < normal_area / 2
    assert hard_area < FRAME.width * FRAME.height / 20


def _first_moment(density: np.ndarray) -> float:
    x = (np.arange(len(density)) + 0.5) / len(density)
    return float((x * density).sum() / density.sum())


def test_hard_gain_shift_is_a_few_percent() -> None:
    spec = DEMO["spectrum"]
    rng = np.random.default_rng(3)
    good = np.mean(
        [_first_moment(make_density(spec, "Good", rng, hard=True)[0]) for _ in range(20)]
    )

    def shifted(hard: bool) -> float:
        while True:
            density, truth = make_density(spec, "Bad", rng, hard=hard)
            if truth.defect == "gain_shift":
                return _first_moment(density)

    hard_shift = abs(1 - np.mean([shifted(True) for _ in range(10)]) / good)
    normal_shift = abs(1 - np.mean([shifted(False) for _ in range(10)]) / good)
    assert 0.005 < hard_shift < 0.06
    assert normal_shift > 3 * hard_shift


def test_hard_labelled_set_files_a_few_percent_under_wrong_labels(tmp_path: Path) -> None:
    spec = PlotTypeSpec("FTOF_adcTime_s1", "FTOF", "timing")
    written = write_labelled_set(
        tmp_path, spec, {"Good": 60, "Bad": 60, "NoData": 30}, seed=4, hard=True, label_noise=0.05
    )
    assert sum(written.values()) == 150
    noisy, bad_without_box = 0, 0
    for png in tmp_path.rglob("*.png"):
        truth = read_truth(png)
        assert truth is not None
        filed = png.parent.name
        assert truth["noisy_label"] == (filed != truth["label"])
        noisy += filed != truth["label"]
        bad_without_box += truth["label"] == "Bad" and not truth["box"]
    assert 1 <= noisy <= 20  # 5 % of 150 is 7.5
    assert bad_without_box == 0  # ground truth for pointing survives the noise


def test_simulate_command_hard_mode(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    args = ["simulate", "--out", str(tmp_path), "--once", "--seed", "5", "--truth"]
    result = runner.invoke(app, [*args, "--mode", "hard", "--bad-fraction", "1.0"])
    assert result.exit_code == 0, result.output
    sidecars = [json.loads(p.read_text()) for p in tmp_path.rglob("*.truth.json")]
    assert len(sidecars) == 6
    assert all(s["box"] for s in sidecars if s["label"] == "Bad")
    refused = runner.invoke(app, [*args, "--mode", "nightmare"])
    assert refused.exit_code == 1 and "normal or hard" in refused.output
