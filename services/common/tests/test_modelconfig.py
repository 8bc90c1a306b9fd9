"""The model config file: its text format (checked with TF Serving's own proto), atomic
writes, what the database puts in it, and pruning."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from hydra_common import lifecycle
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import Model, ModelStatus, PlotType
from hydra_common.modelconfig import (
    ModelConfigWriter,
    ModelEntry,
    Pruner,
    entries_for,
    render,
    write_if_changed,
)
from hydra_common.modelconfig_cli import model_config_app
from hydra_common.settings import HydraSettings

ENTRIES = [
    ModelEntry("RF_time", "/models/RF_time", (3, 1, 2)),
    ModelEntry("FTOF_adc", '/odd path/with "quotes"\\ and é\n', (7,)),
]


def _proto() -> tuple[object, object]:
    config = pytest.importorskip("tensorflow_serving.config.model_server_config_pb2")
    text_format = pytest.importorskip("google.protobuf.text_format")
    return config, text_format


def test_render_parses_as_tf_servings_model_server_config() -> None:
    config_pb2, text_format = _proto()
    parsed = text_format.Parse(render(ENTRIES), config_pb2.ModelServerConfig())  # type: ignore[attr-defined]
    configs = list(parsed.model_config_list.config)
    assert [c.name for c in configs] == ["FTOF_adc", "RF_time"]
    assert configs[0].base_path == '/odd path/with "quotes"\\ and é\n'
    assert list(configs[1].model_version_policy.specific.versions) == [1, 2, 3]
    assert {c.model_platform for c in configs} == {"tensorflow"}
    # Plain names and paths come out exactly as protobuf itself writes them.
    plain = [ENTRIES[0]]
    expected = config_pb2.ModelServerConfig()  # type: ignore[attr-defined]
    item = expected.model_config_list.config.add(
        name="RF_time", base_path="/models/RF_time", model_platform="tensorflow"
    )
    item.model_version_policy.specific.versions.extend([1, 2, 3])
    assert render(plain) == text_format.MessageToString(expected)  # type: ignore[attr-defined]


def test_an_empty_list_is_a_valid_config() -> None:
    config_pb2, text_format = _proto()
    text = render([])
    assert text == "model_config_list {\n}\n"
    parsed = text_format.Parse(text, config_pb2.ModelServerConfig())  # type: ignore[attr-defined]
    assert parsed.HasField("model_config_list") and not parsed.model_config_list.config


def test_entries_for_builds_base_paths_and_drops_empty_names() -> None:
    entries = entries_for({"a": {2, 1}, "b": set()}, "/models/")
    assert entries == [ModelEntry("a", "/models/a", (1, 2))]


def test_write_if_changed_is_atomic_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "models.config"
    assert write_if_changed(path, "one\n") is True
    assert write_if_changed(path, "one\n") is False
    inode = path.stat().st_ino
    assert write_if_changed(path, "two\n") is True
    assert path.read_text() == "two\n"
    assert path.stat().st_ino != inode  # a new file renamed over the old: never half written
    assert sorted(p.name for p in path.parent.iterdir()) == ["models.config"]


def _versions(root: Path, name: str, versions: range) -> None:
    for v in versions:
        (root / name / str(v)).mkdir(parents=True)
        (root / name / str(v) / "saved_model.pb").write_bytes(b"x")


def test_pruner_waits_for_the_grace_period_and_keeps_what_may_serve(tmp_path: Path) -> None:
    _versions(tmp_path, "m", range(1, 8))
    (tmp_path / "m" / ".tmp-export").mkdir()
    now = [1000.0]
    pruner = Pruner(tmp_path, grace_seconds=60, keep=2, clock=lambda: now[0])
    statuses = {
        ("m", 1): ModelStatus.RETIRED,
        ("m", 2): ModelStatus.FAILED,
        # 3: unknown to the database
        ("m", 4): ModelStatus.TRAINED,  # may be promoted: never pruned
        ("m", 5): ModelStatus.RETIRED,
        ("m", 6): ModelStatus.RETIRED,
        ("m", 7): ModelStatus.ACTIVE,
    }
    listed = {"m": {5, 7}}
    assert pruner.prune(listed, statuses) == []  # the grace period starts now
    now[0] += 59
    assert pruner.prune(listed, statuses) == []
    listed_again = {"m": {1, 5, 7}}  # 1 listed again (rolled back to): its clock restarts
    assert pruner.prune(listed_again, statuses) == []
    now[0] += 1
    removed = pruner.prune(listed, statuses)
    assert sorted(p.name for p in removed) == ["2", "3"]
    left = sorted(p.name for p in (tmp_path / "m").iterdir())
    # 4 trained, 5 and 7 listed, 6 and 7 the newest two, 1 still in its new grace period.
    assert left == [".tmp-export", "1", "4", "5", "6", "7"]
    now[0] += 60
    assert [p.name for p in pruner.prune(listed, statuses)] == ["1"]


async def _hall(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            pt = PlotType(name="FTOF_adc")
            s.add(pt)
            await s.flush()
            ids = {}
            for version in (1, 2, 3):
                m = Model(
                    plot_type_id=pt.id,
                    name="FTOF_adc",
                    version=version,
                    architecture="small",
                    status=ModelStatus.TRAINED,
                )
                s.add(m)
                await s.flush()
                ids[f"v{version}"] = m.id
            return ids
    finally:
        await engine.dispose()


async def _promote(url: str, model_id: int) -> None:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            await lifecycle.promote(s, model_id, "tester")
    finally:
        await engine.dispose()


def _listed(path: Path) -> dict[str, list[int]]:
    config_pb2, text_format = _proto()
    parsed = text_format.Parse(path.read_text(), config_pb2.ModelServerConfig())  # type: ignore[attr-defined]
    return {
        c.name: list(c.model_version_policy.specific.versions)
        for c in parsed.model_config_list.config
    }


async def test_the_writer_follows_promotions(sqlite_url: str, tmp_path: Path) -> None:
    ids = await _hall(sqlite_url)
    settings = HydraSettings(
        database_url=sqlite_url, model_dir=tmp_path / "models", model_base_path="/tfs/models"
    )
    registry = CollectorRegistry()
    writer = ModelConfigWriter(settings, registry)
    try:
        assert await writer.write_once() is True
        # No active model: the two newest trained ones are candidates.
        assert _listed(settings.model_config_path) == {"FTOF_adc": [2, 3]}
        assert '"/tfs/models/FTOF_adc"' in settings.model_config_path.read_text()
        assert await writer.write_once() is False
        await _promote(sqlite_url, ids["v1"])
        assert await writer.write_once() is True
        assert _listed(settings.model_config_path) == {"FTOF_adc": [1, 2, 3]}
        await _promote(sqlite_url, ids["v3"])
        assert await writer.write_once() is True
        # v3 active, v1 the previous active; v2 is older than the active one: no candidate.
        assert _listed(settings.model_config_path) == {"FTOF_adc": [1, 3]}
        assert registry.get_sample_value("hydra_modelconfig_writes_total") == 3
        assert registry.get_sample_value("hydra_modelconfig_listed_versions") == 2
    finally:
        await writer.close()


def test_hydra_model_config_write(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "cfg" / "tfs.config"
    monkeypatch.setenv("HYDRA_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HYDRA_MODEL_CONFIG_FILE", str(target))
    result = CliRunner().invoke(model_config_app, ["write"])
    assert result.exit_code == 0, result.output
    assert "written" in result.output
    assert target.read_text() == "model_config_list {\n}\n"
    again = CliRunner().invoke(model_config_app, ["write"])
    assert "unchanged" in again.output


async def test_sqlite_query_sees_no_failed_models(sqlite_url: str) -> None:
    """Failed and training models never reach the file."""
    engine = make_engine(sqlite_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            pt = PlotType(name="x")
            s.add(pt)
            await s.flush()
            for version, status in ((1, ModelStatus.FAILED), (2, ModelStatus.TRAINING)):
                s.add(
                    Model(
                        plot_type_id=pt.id, name="x", version=version, architecture="small",
                        status=status,
                    )
                )  # fmt: skip
        async with make_sessionmaker(engine)() as s:
            assert await lifecycle.serving_versions(s) == {}
            assert (await s.scalar(sa.select(sa.func.count()).select_from(Model))) == 2
    finally:
        await engine.dispose()
