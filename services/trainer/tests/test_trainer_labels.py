"""A hall's own labels from the command line, on MariaDB: ``hydra plot-type add`` with new
labels, ``hydra label add/list/set``, ``hydra plot-type labels``, and ``hydra import`` of a
tree whose folders are the new labels. The last test checks that the keeper and the
predictor (which read ``classifications.alarm``) treat a new alarm label as an alarm.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from PIL import Image
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from hydra_common.db import schema as s
from hydra_common.db.engine import make_engine
from hydra_testsupport.rows import in_session
from hydra_trainer.cli import register

pytestmark = pytest.mark.mysql


def _label(url: str, name: str) -> s.Classification | None:
    async def work(session: Any) -> s.Classification | None:
        found: s.Classification | None = await session.scalar(
            sa.select(s.Classification).where(s.Classification.name == name)
        )
        return found

    return in_session(url, work)


def _valid(url: str, plot_type: str) -> list[str]:
    async def work(session: Any) -> list[str]:
        rows = await session.scalars(
            sa.select(s.Classification.name)
            .join(s.PlotTypeClassification)
            .join(s.PlotType)
            .where(s.PlotType.name == plot_type)
            .order_by(s.Classification.id)
        )
        return list(rows)

    return in_session(url, work)


def _new(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def hydra(mysql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    monkeypatch.setenv("HYDRA_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HYDRA_DATABASE_URL", mysql_url)

    def invoke(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output + repr(result.exception)
        else:
            assert result.exit_code == 1, result.output + repr(result.exception)
        return result

    return invoke


def test_plot_type_add_creates_the_labels_it_has_not_seen(
    hydra: Callable[..., Any], mysql_url: str
) -> None:
    glitch, beam_off, plot_type = _new("Glitch"), _new("Beam-Off"), _new("CDC_occ")
    out = hydra(
        "plot-type", "add", plot_type,
        "--labels", f"good,Bad,{glitch},{beam_off}",
        "--alarm", glitch, "--color", f"{glitch}=#12AB34",
    ).output  # fmt: skip
    assert f"new labels: {glitch}, {beam_off}" in out
    assert _valid(mysql_url, plot_type) == ["Good", "Bad", glitch, beam_off]
    made = _label(mysql_url, glitch)
    assert made is not None and made.alarm and made.trainable and made.color == "#12ab34"
    other = _label(mysql_url, beam_off)
    assert other is not None and not other.alarm and other.color.startswith("#")
    # --alarm describes new labels; an existing one is changed with `hydra label set`.
    refused = hydra(
        "plot-type", "add", _new("X"), "--labels", "Good,Bad", "--alarm", "Good", ok=False
    )
    assert "hydra label set Good --alarm" in refused.output
    bad_name = hydra("plot-type", "add", _new("X"), "--labels", "Good,no such", ok=False)
    assert "invalid label name" in bad_name.output


def test_label_add_list_set(hydra: Callable[..., Any], mysql_url: str) -> None:
    name = _new("Spark")
    assert "(alarm, untrainable)" in hydra("label", "add", name, "--alarm", "--untrainable").output
    assert "already exists" in hydra("label", "add", name.upper(), ok=False).output
    assert "already exists as 'HotChannel'" in hydra("label", "add", "hot_channel", ok=False).output
    assert "reserved" in hydra("label", "add", "NoModel", ok=False).output
    assert "reserved" in hydra("label", "add", "error", ok=False).output  # a failed inference
    assert "invalid colour" in hydra("label", "add", _new("C"), "--color", "red", ok=False).output
    listed = hydra("label", "list").output
    assert name in listed and "Ignore" in listed
    hydra("label", "set", name, "--color", "#ABCDEF", "--no-alarm", "--trainable")
    label = _label(mysql_url, name)
    assert label is not None and (label.color, label.alarm, label.trainable) == (
        "#abcdef",
        False,
        True,
    )
    assert "no label" in hydra("label", "set", _new("Nope"), "--alarm", ok=False).output

    async def audits(session: Any) -> list[str]:
        rows = await session.scalars(
            sa.select(s.AuditLog.action)
            .where(s.AuditLog.entity == "classification", s.AuditLog.entity_id == str(label.id))
            .order_by(s.AuditLog.id)
        )
        return list(rows)

    assert in_session(mysql_url, audits) == ["create", "update"]


def _png(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 12), (shade, shade, shade)).save(path)


def test_import_a_tree_of_new_label_names(
    hydra: Callable[..., Any], mysql_url: str, tmp_path: Path
) -> None:
    glitch, spark, plot_type = _new("Glitch"), _new("Spark_"), _new("FDC_occ")
    hydra("plot-type", "add", plot_type, "--labels", f"Good,{glitch},{spark}")
    tree = tmp_path / "tree"
    for i in range(3):
        _png(tree / "Good" / f"Run5000{i}" / f"{plot_type}_{i}.png", 10 * i)
        _png(tree / glitch / f"g{i}.png", 100 + i)
    _png(tree / spark.replace("_", "-").lower() / "s.png", 200)  # matched ignoring case, _, -
    out = hydra("import", str(tree), "--plot-type", plot_type).output
    assert f"imported 7 images into {plot_type}" in out
    assert f"{glitch} 3" in out and "Good 3" in out and f"{spark} 1" in out

    async def counts(session: Any) -> dict[str, int]:
        rows = await session.execute(
            sa.select(s.Classification.name, sa.func.count())
            .join(s.Label, s.Label.classification_id == s.Classification.id)
            .join(s.PlotType, s.PlotType.id == s.Label.plot_type_id)
            .where(s.PlotType.name == plot_type)
            .group_by(s.Classification.name)
        )
        return dict(rows.tuples().all())

    assert in_session(mysql_url, counts) == {"Good": 3, glitch: 3, spark: 1}
    # A folder named after a label the plot type does not have stops the import.
    _png(tmp_path / "other" / "Bad" / "b.png", 5)
    refused = hydra("import", str(tmp_path / "other"), "--plot-type", plot_type, ok=False)
    assert "is not valid for" in refused.output


def test_plot_type_labels_add_and_remove(hydra: Callable[..., Any], mysql_url: str) -> None:
    plot_type, extra = _new("BCAL_occ"), _new("Cosmic")
    hydra("plot-type", "add", plot_type, "--labels", "Good,Bad")
    hydra("label", "add", extra)
    out = hydra("plot-type", "labels", plot_type, "--add", extra, "--add", "NoData").output
    assert out.strip() == f"{plot_type}: Good, Bad, NoData, {extra}"
    hydra("plot-type", "labels", plot_type, "--remove", "Bad")
    assert _valid(mysql_url, plot_type) == ["Good", "NoData", extra]
    assert (
        "create them first"
        in hydra("plot-type", "labels", plot_type, "--add", _new("U"), ok=False).output
    )


def test_keeper_and_predictor_treat_a_new_alarm_label_as_alarm(
    hydra: Callable[..., Any], mysql_url: str
) -> None:
    keeper_reference = pytest.importorskip("hydra_keeper.reference")
    predictor_catalog = pytest.importorskip("hydra_predictor.catalog")
    predictor_metrics = pytest.importorskip("hydra_predictor.metrics")
    quench, calm, plot_type = _new("Quench"), _new("Calm"), _new("SC_occ")
    hydra("plot-type", "add", plot_type, "--labels", f"Good,{quench},{calm}", "--alarm", quench)

    async def with_model(session: Any) -> None:
        pt = await session.scalar(sa.select(s.PlotType).where(s.PlotType.name == plot_type))
        model = s.Model(
            plot_type_id=pt.id,
            name=plot_type,
            version=1,
            architecture="small",
            label_order=["Good", quench, calm],
            status=s.ModelStatus.ACTIVE,
        )
        session.add(model)
        await session.flush()
        pt.active_model_id = model.id

    in_session(mysql_url, with_model)

    async def look() -> tuple[frozenset[str], frozenset[int]]:
        engine = make_engine(mysql_url)
        try:
            reference = keeper_reference.ReferenceCache(0)
            async with engine.connect() as conn:
                await reference.ensure(conn, [])
            metrics = predictor_metrics.PredictorMetrics(CollectorRegistry())
            catalog = predictor_catalog.ModelCatalog(engine, metrics)
            await catalog.refresh()
            active = catalog.lookup(plot_type)
            assert active is not None
            return reference.alarm_labels, active.alarm_indices
        finally:
            await engine.dispose()

    alarm_labels, alarm_indices = asyncio.run(look())
    assert quench in alarm_labels and calm not in alarm_labels and "Bad" in alarm_labels
    assert alarm_indices == frozenset({1})
