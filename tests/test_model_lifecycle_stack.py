"""The model life cycle through the running local stack, on MariaDB.

While ``hydra up``'s processes run (the model config writer, the bundled model server, keeper,
balancer, predictor, feeder), a second model version is exported and recorded: the writer
lists it in the model config file as a candidate, the model server loads it, a promotion
makes the next images get its verdicts, and a rollback brings the first one back. Every image
fed gets exactly one OK verdict.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hydra_common import lifecycle
from hydra_common.db.schema import Model, ModelStatus
from hydra_common.launcher import LocalStack
from hydra_testsupport import eventually
from hydra_testsupport.rows import in_session
from hydra_testsupport.stacks import Site, running_stack, scratch_site

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]

PLOT_TYPE = "FTOF_adcTime_s1"
SERVICES = ("modelconfig", "modelserver", "keeper", "balancer", "predictor", "feeder")
# New models are seen, listed and loaded within a second.
QUICK_MODEL_POLLS = {
    "HYDRA_MODEL_REFRESH_SECONDS": "0.5",
    "HYDRA_MODEL_CONFIG_POLL_SECONDS": "0.5",
    "HYDRA_MODEL_POLL_SECONDS": "0.2",
}


@dataclass
class Hall:
    url: str
    data_dir: Path
    input_dir: Path
    stack: LocalStack
    labels: tuple[str, ...]
    models: dict[int, int] = field(default_factory=dict)  # version -> models.id
    fed: set[str] = field(default_factory=set)
    next_run: int = 7000

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"

    def feed(self, images: int) -> list[str]:
        """Simulate ``images`` plots of the plot type in a run of their own."""
        from hydra_trainer.catalog import find_spec
        from hydra_trainer.simulate import SimulationConfig, run_simulation

        paths: list[str] = []
        cfg = SimulationConfig(
            out_dir=self.input_dir,
            plot_types=[find_spec(PLOT_TYPE, "demo")],
            bad_fraction=0.3,
            runs=1,
            chunks_per_run=images,
            start_run=self.next_run,
            seed=self.next_run,
            truth=False,
            interval=0.0,
        )
        self.next_run += 1
        run_simulation(
            cfg,
            on_image=lambda p, _t: paths.append(p.relative_to(self.input_dir).as_posix()),
            sleep=lambda _s: None,
        )
        self.fed.update(paths)
        return paths

    def versions_of(self, paths: list[str]) -> dict[str, int] | None:
        """Source path -> model version of each path's verdict; None until all are in."""
        q = (
            "SELECT rh.source_path, m.version FROM run_history rh "
            "JOIN models m ON m.id = rh.model_id WHERE rh.source_path IN :paths"
        )
        stmt = sa.text(q).bindparams(sa.bindparam("paths", expanding=True))

        async def work(session: Any) -> list[Any]:
            return list((await session.execute(stmt, {"paths": paths})).all())

        rows = in_session(self.url, work)
        return {p: int(v) for p, v in rows} if len(rows) == len(paths) else None

    def listed_versions(self) -> set[int]:
        path = self.model_dir / "models.config"
        text = path.read_text() if path.exists() else ""
        return {int(v) for v in re.findall(r"versions: (\d+)", text)}

    def loaded_versions(self) -> float:
        port = self.stack.ports.metrics["modelserver"]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                body = r.read().decode()
        except OSError:
            return -1.0
        found = re.search(r"^hydra_modelserver_models_loaded (\S+)$", body, re.M)
        return float(found.group(1)) if found else -1.0


def _record_model(url: str, version: int, labels: tuple[str, ...], parent: int | None) -> int:
    from hydra_trainer.registry import model_name

    async def work(session: Any) -> int:
        pt_id = await session.scalar(
            sa.text("SELECT id FROM plot_types WHERE name = :n"), {"n": PLOT_TYPE}
        )
        model = Model(
            plot_type_id=pt_id,
            name=model_name(PLOT_TYPE),
            version=version,
            architecture="small",
            input_height=32,
            input_width=32,
            label_order=list(labels),
            status=ModelStatus.TRAINED,
            parent_model_id=parent,
            trained_by="lifecycle-stack",
        )
        session.add(model)
        await session.flush()
        return int(model.id)

    return int(in_session(url, work))


def _export(model_dir: Path, version: int, labels: tuple[str, ...]) -> None:
    """Export into a staging folder and move in, as the trainer's export does."""
    from hydra_trainer.export import export_untrained_model
    from hydra_trainer.registry import model_name

    name = model_name(PLOT_TYPE)
    with tempfile.TemporaryDirectory(dir=model_dir.parent) as staging:
        export_untrained_model(staging, name, version, labels, input_size=32)
        (model_dir / name).mkdir(parents=True, exist_ok=True)
        shutil.move(Path(staging) / name / str(version), model_dir / name / str(version))


def seed_active_model(site: Site, by: str) -> tuple[tuple[str, ...], int]:
    """The plot type and its model version 1, exported and promoted by ``by``, before the
    stack starts; returns the labels and v1's id (the shadow stack test seeds the same way)."""
    from hydra_trainer.catalog import find_spec
    from hydra_trainer.store import add_plot_type

    labels = tuple(find_spec(PLOT_TYPE, "demo").labels)
    in_session(
        site.url,
        lambda s: add_plot_type(s, PLOT_TYPE, labels, detector="FTOF", collect_percent=0),
    )
    _export(site.data_dir / "models", 1, labels)
    v1 = _record_model(site.url, 1, labels, None)
    in_session(site.url, lambda s: lifecycle.promote(s, v1, by))
    return labels, v1


@pytest.fixture(scope="module")
def hall() -> Iterator[Hall]:
    with scratch_site("hydra_lifecycle") as site:
        labels, v1 = seed_active_model(site, "lifecycle-stack")
        with running_stack(site, SERVICES, 120, **QUICK_MODEL_POLLS) as stack:
            yield Hall(site.url, site.data_dir, site.input_dir, stack, labels, {1: v1})


def test_promotion_and_rollback_reach_the_model_server_and_lose_nothing(hall: Hall) -> None:
    # The model server loaded exactly what the file lists: the active version.
    assert hall.listed_versions() == {1}
    assert eventually(lambda: hall.loaded_versions() == 1)
    first = hall.feed(4)
    assert set(eventually(lambda: hall.versions_of(first)).values()) == {1}

    # A new model is exported and recorded: a candidate, listed and loaded before promotion.
    started = time.monotonic()
    _export(hall.model_dir, 2, hall.labels)
    hall.models[2] = _record_model(hall.url, 2, hall.labels, parent=hall.models[1])
    eventually(lambda: hall.listed_versions() == {1, 2})
    eventually(lambda: hall.loaded_versions() == 2)
    candidate_ready = time.monotonic() - started

    # Promotion: the next images get version 2's verdicts.
    in_session(hall.url, lambda s: lifecycle.promote(s, hall.models[2], "lifecycle-stack"))
    promoted = time.monotonic()
    switched = _until_served_by(hall, 2)
    promotion_seconds = time.monotonic() - promoted
    assert hall.listed_versions() == {1, 2}  # 2 active, 1 the previous active
    after = hall.feed(4)
    assert set(eventually(lambda: hall.versions_of(after)).values()) == {2}

    # Rollback: version 1 again, served at once (it never left the model server).
    in_session(hall.url, lambda s: lifecycle.rollback(s, PLOT_TYPE, "lifecycle-stack"))
    rolled = time.monotonic()
    _until_served_by(hall, 1)
    rollback_seconds = time.monotonic() - rolled
    back = hall.feed(4)
    assert set(eventually(lambda: hall.versions_of(back)).values()) == {1}

    # Nothing lost, nothing twice, no error verdicts.
    async def summary(session: Any) -> list[Any]:
        q = "SELECT source_path, status FROM run_history"
        return list((await session.execute(sa.text(q))).all())

    rows = in_session(hall.url, summary)
    assert sorted(p for p, _ in rows) == sorted(hall.fed)
    assert {str(s).lower() for _, s in rows} == {"ok"}, rows
    print(
        f"candidate listed+loaded {candidate_ready:.1f}s; promotion served in "
        f"{promotion_seconds:.1f}s ({switched} probe images); rollback {rollback_seconds:.1f}s"
    )


def _until_served_by(hall: Hall, version: int, within: float = 60.0) -> int:
    """Feed one image at a time until one gets ``version``'s verdict; returns how many."""
    deadline = time.monotonic() + within
    probes = 0
    while time.monotonic() < deadline:
        probes += 1
        paths = hall.feed(1)
        got = eventually(lambda p=paths: hall.versions_of(p), within=30)  # type: ignore[misc]
        if got[paths[0]] == version:
            return probes
    raise AssertionError(f"version {version} not serving after {within:.0f}s")
