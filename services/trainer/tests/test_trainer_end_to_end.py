"""End to end on a real database: simulate, import, train, export, evaluate, promote, roll back.

Runs the real ``hydra`` commands in-process (typer's runner) against a migrated SQLite
database and, when the server is there, MariaDB; trains a real ``small`` model for a few
epochs and calls both signatures of the exported SavedModel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from hydra_common.db import schema as s
from hydra_testsupport.rows import in_session
from hydra_trainer import pipeline
from hydra_trainer.catalog import hall_catalog
from hydra_trainer.cli import register
from hydra_trainer.simulate import write_labelled_set
from hydra_trainer.thresholds import choose_thresholds

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf
PLOT_TYPE = "RF_time"


def _rows(url: str, query: Any) -> list[Any]:
    async def work(session: Any) -> list[Any]:
        return list((await session.execute(query)).scalars().all())

    return in_session(url, work)


@pytest.fixture
def hydra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    monkeypatch.setenv("HYDRA_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HYDRA_TRAINER_USER", "tester")

    def invoke(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    return invoke


def _labelled_tree(root: Path) -> Path:
    spec = next(s for s in hall_catalog("demo") if s.name == PLOT_TYPE)
    write_labelled_set(root, spec, {"Good": 16, "Bad": 14, "NoData": 10}, seed=5)
    # One HotChannel image (a class under 2 examples: dropped) and two Ignore (never trained).
    write_labelled_set(root, spec, {"HotChannel": 1, "Ignore": 2}, seed=6)
    return root


def _run_flow(
    url: str, tmp_path: Path, hydra: Callable[..., Any], monkeypatch: Any, lifecycle: bool
) -> None:
    monkeypatch.setenv("HYDRA_DATABASE_URL", url)
    tree = _labelled_tree(tmp_path / "labelled")
    labels = "Good,Bad,NoData,HotChannel,Ignore"
    hydra("plot-type", "add", PLOT_TYPE, "--labels", labels, "--detector", "RF")

    # Clear one-line errors for an unknown plot type and an empty training set.
    r = hydra("train", "NoSuchPlot", "--epochs", "1", ok=False)
    assert r.exit_code == 1 and "unknown plot type" in r.output
    r = hydra("train", PLOT_TYPE, "--epochs", "1", ok=False)
    assert r.exit_code == 1 and "no labelled images" in r.output

    r = hydra("import", str(tree), "--plot-type", PLOT_TYPE)
    assert "imported 43 images" in r.output
    stored = list((tmp_path / "var" / "storage" / "imported" / PLOT_TYPE).glob("*.png"))
    assert len(stored) == 43

    async def add_run(session: Any) -> int:
        pt = (
            await session.execute(sa.select(s.PlotType).where(s.PlotType.name == PLOT_TYPE))
        ).scalar_one()
        run = s.TrainingRun(plot_type_id=pt.id, requested_by="tester")
        session.add(run)
        await session.flush()
        return int(run.id)

    # Hydra's default is InceptionV3 from ImageNet weights: with no weights file on disk,
    # a clear error, never a silent random start.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    r = hydra("train", PLOT_TYPE, "--epochs", "1", ok=False)
    assert r.exit_code == 1 and "ImageNet weights for inceptionv3 not found" in r.output
    assert "--init random" in r.output

    run_id = in_session(url, add_run)
    thresholds_chosen_on: list[np.ndarray] = []
    real_choose = choose_thresholds  # the function pipeline imports, spied on there

    def spy(weights: np.ndarray, *args: Any) -> Any:
        thresholds_chosen_on.append(np.array(weights))
        return real_choose(weights, *args)

    monkeypatch.setattr(pipeline, "choose_thresholds", spy)
    r = hydra(
        "train", PLOT_TYPE, "--arch", "small", "--epochs", "3", "--input-size", "48x64",
        "--run-id", str(run_id),
    )  # fmt: skip
    assert r.output.strip().splitlines()[-1] == "model id: 1"
    assert "threshold Bad:" in r.output and "figures are indicative" in r.output

    model = _rows(url, sa.select(s.Model))[0]
    assert model.status == s.ModelStatus.TRAINED and model.version == 1
    assert model.name == PLOT_TYPE and model.architecture == "small"
    assert model.label_order == ["Good", "Bad", "NoData"]
    assert (model.input_height, model.input_width) == (48, 64)
    assert model.hyperparameters["learning_rate"] == 0.01
    assert model.hyperparameters["momentum"] == 0.2 and model.hyperparameters["nesterov"]
    assert 1 <= model.epochs_run <= 3 and model.trained_by == "tester"
    assert model.framework_versions["tensorflow"] == tf.__version__
    assert "python" in model.framework_versions and model.parent_model_id is None

    run = _rows(url, sa.select(s.TrainingRun))[0]
    assert run.status == s.TrainingRunStatus.SUCCEEDED and run.progress == 1.0
    assert run.model_id == model.id

    tset = _rows(url, sa.select(s.TrainingSet))[0]
    # Hydra's default sampling (balanced: undersample to the Bad count, 14 - 6 held out).
    assert tset.dropped_classes == {"HotChannel": 1} and tset.sampling_method == "undersample"
    assert tset.class_counts["test"] == {"Good": 4, "Bad": 3, "NoData": 2}
    assert tset.class_counts["validation"] == {"Good": 4, "Bad": 3, "NoData": 2}
    assert tset.class_counts["train"] == {"Good": 8, "Bad": 8, "NoData": 8}
    images = _rows(url, sa.select(s.TrainingSetImage))
    held = [i for i in images if i.split != s.Split.TRAIN]
    assert len(held) == 18  # a quarter of each class to test, up to a quarter to validation

    # Thresholds: on the validation images only, smoothed (fewer than 30 per label).
    thresholds = _rows(url, sa.select(s.Threshold))
    assert len(thresholds) == 3
    assert all(0.0 <= t.threshold <= 0.99 for t in thresholds)
    assert {t.method for t in thresholds} == {"max_f1_smoothed"}
    evals = _rows(url, sa.select(s.ModelEvaluation))
    assert {e.plot_id for e in evals} == {i.plot_id for i in held}
    assert all(abs(sum(e.weights.values()) - 1.0) < 1e-4 for e in evals)
    val_ids = {i.plot_id for i in held if i.split == s.Split.VALIDATION}
    test_ids = {i.plot_id for i in held if i.split == s.Split.TEST}
    assert {e.plot_id for e in evals if e.split == s.Split.VALIDATION} == val_ids
    assert {e.plot_id for e in evals if e.split == s.Split.TEST} == test_ids
    # The split discipline: the weights thresholds were chosen on are exactly the
    # validation images' (in some order), and no test image's weights are among them.
    (chosen_on,) = thresholds_chosen_on
    rows = {e.plot_id: [e.weights[lb] for lb in model.label_order] for e in evals}
    val_rows = np.array([rows[i] for i in sorted(val_ids)])
    test_rows = np.array([rows[i] for i in sorted(test_ids)])
    chosen_on = np.asarray(chosen_on, dtype=np.float64)
    assert len(chosen_on) == len(val_ids)

    def nearest(w: np.ndarray, among: np.ndarray) -> float:
        return float(np.abs(among - w).max(axis=1).min())

    assert all(nearest(w, val_rows) < 1e-7 for w in chosen_on)
    assert all(nearest(w, test_rows) > 0 for w in chosen_on)
    # Every figure shown comes from the test split, and says it is indicative here.
    assert model.metrics["split"] == "test" and model.metrics["evaluated_images"] == 9
    assert sum(map(sum, model.metrics["confusion_matrix"]["counts"])) == 9
    assert model.metrics["indicative"] is True
    assert model.metrics["thresholds"]["Bad"]["validation_images"] == 3
    reports = _rows(url, sa.select(s.TrainingReport))
    assert all(r.human_classification_id != r.model_classification_id for r in reports)

    # The exported version answers both signatures on one of the real images.
    loaded = tf.saved_model.load(model.location)
    png = stored[0].read_bytes()
    out = loaded.signatures["explain"](image=tf.constant([png, png]))
    assert out["weights"].shape == (2, 3) and out["heatmap"].shape == (2, 48, 64)
    np.testing.assert_allclose(out["weights"].numpy().sum(axis=1), 1.0, atol=1e-5)
    w = loaded.signatures["serving_default"](image=tf.constant([png]))["weights"].numpy()
    np.testing.assert_allclose(w[0], out["weights"].numpy()[0], atol=1e-5)

    if not lifecycle:
        return
    # Life cycle: promote 1, train 2 (its parent is 1), promote 2, roll back to 1.
    hydra("promote", "1")
    r = hydra(
        "train", PLOT_TYPE, "--arch", "small", "--epochs", "1", "--input-size", "48x64",
        "--sampling", "oversample",
    )  # fmt: skip
    assert r.output.strip().splitlines()[-1] == "model id: 2"
    hydra("promote", "2")
    models = {m.id: m for m in _rows(url, sa.select(s.Model))}
    assert models[2].parent_model_id == 1 and models[2].version == 2
    assert models[1].status == s.ModelStatus.RETIRED and models[2].status == s.ModelStatus.ACTIVE
    r = hydra("rollback", PLOT_TYPE)
    assert "model 1" in r.output
    models = {m.id: m for m in _rows(url, sa.select(s.Model))}
    assert models[1].status == s.ModelStatus.ACTIVE and models[2].status == s.ModelStatus.RETIRED
    pt = _rows(url, sa.select(s.PlotType))[0]
    assert pt.active_model_id == 1
    r = hydra("models", PLOT_TYPE)
    assert "retired" in r.output and "active" in r.output


def test_end_to_end_sqlite(
    sqlite_url: str, tmp_path: Path, hydra: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_flow(sqlite_url, tmp_path, hydra, monkeypatch, lifecycle=True)


@pytest.mark.mysql
def test_end_to_end_mariadb(
    fresh_mysql_url: str, tmp_path: Path, hydra: Callable[..., Any], monkeypatch: Any
) -> None:
    # The same flow up to the first model; the life cycle is the same SQL on both backends.
    _run_flow(fresh_mysql_url, tmp_path, hydra, monkeypatch, lifecycle=False)


def test_import_refuses_unreadable_image(
    sqlite_url: str, tmp_path: Path, hydra: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYDRA_DATABASE_URL", sqlite_url)
    hydra("plot-type", "add", "X", "--labels", "Good,Bad")
    (tmp_path / "tree" / "Good").mkdir(parents=True)
    (tmp_path / "tree" / "Good" / "broken.png").write_bytes(b"\x89PNG not really")
    r = hydra("import", str(tmp_path / "tree"), "--plot-type", "X", ok=False)
    assert r.exit_code == 1 and "unreadable image" in r.output
    r = hydra("plot-type", "add", "X", ok=False)
    assert r.exit_code == 1 and "already exists" in r.output


def test_a_cancelled_run_stops_at_its_next_progress_report(
    sqlite_url: str, tmp_path: Path, hydra: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel from the web sets the row to ``cancelled``; the trainer notices at its next
    progress report (an epoch's end), stops, and leaves its model ``failed``."""
    import sqlite3

    from hydra_trainer.pipeline import TrainingCancelled, train_plot_type
    from hydra_trainer.settings import TrainerSettings
    from hydra_trainer.train import TrainOptions

    monkeypatch.setenv("HYDRA_DATABASE_URL", sqlite_url)
    hydra("plot-type", "add", PLOT_TYPE, "--labels", "Good,Bad,NoData")
    spec = next(s for s in hall_catalog("demo") if s.name == PLOT_TYPE)
    write_labelled_set(tmp_path / "tree", spec, {"Good": 8, "Bad": 8, "NoData": 8}, seed=3)
    hydra("import", str(tmp_path / "tree"), "--plot-type", PLOT_TYPE)

    async def add_run(session: Any, status: s.TrainingRunStatus) -> int:
        pt = (
            await session.execute(sa.select(s.PlotType).where(s.PlotType.name == PLOT_TYPE))
        ).scalar_one()
        run = s.TrainingRun(plot_type_id=pt.id, requested_by="tester", status=status)
        session.add(run)
        await session.flush()
        return int(run.id)

    # Cancelled while still queued: the trainer stops before it trains anything.
    queued = in_session(sqlite_url, lambda ss: add_run(ss, s.TrainingRunStatus.CANCELLED))
    r = hydra("train", PLOT_TYPE, "--arch", "small", "--run-id", str(queued), ok=False)
    assert r.exit_code == 1 and "cancelled" in r.output
    assert _rows(sqlite_url, sa.select(s.Model)) == []

    # Cancelled during training: at the end of the first epoch.
    running = in_session(sqlite_url, lambda ss: add_run(ss, s.TrainingRunStatus.QUEUED))
    db_file = sqlite_url.split("///", 1)[1]
    messages: list[str] = []

    def progress(fraction: float, message: str) -> None:
        messages.append(message)
        if message.startswith("epoch 1/"):
            with sqlite3.connect(db_file) as conn:
                conn.execute(
                    "UPDATE training_runs SET status = 'cancelled' WHERE id = ?", (running,)
                )

    options = TrainOptions(architecture="small", epochs=20, input_height=48, input_width=64)
    with pytest.raises(TrainingCancelled):
        asyncio.run(
            train_plot_type(
                TrainerSettings(), PLOT_TYPE, options, run_id=running, progress=progress
            )
        )
    assert not any(m.startswith("epoch 2/") for m in messages)
    (model,) = _rows(sqlite_url, sa.select(s.Model))
    assert model.status == s.ModelStatus.FAILED and "cancelled" in model.metrics["error"]
    run = next(r for r in _rows(sqlite_url, sa.select(s.TrainingRun)) if r.id == running)
    assert run.status == s.TrainingRunStatus.CANCELLED
