"""``hydra bootstrap-demo``: a working demo hall from nothing, in a few CPU minutes.

For each of the demo hall's plot types: create it with its labels, simulate a small
labelled set, import it, train a ``small`` model for a few epochs and promote it. Plot types
that already have an active model are left alone (unless forced), so running it twice costs
nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.errors import NotFound
from hydra_common.lifecycle import promote
from hydra_common.logs import get_logger
from hydra_trainer.catalog import PlotTypeSpec, hall_catalog
from hydra_trainer.importer import import_images, scan_tree
from hydra_trainer.pipeline import train_plot_type
from hydra_trainer.settings import TrainerSettings
from hydra_trainer.simulate import write_labelled_set
from hydra_trainer.store import add_plot_type, get_plot_type
from hydra_trainer.train import TrainOptions

log = get_logger(__name__)

# Demo input size: a quarter of the simulated plots' 192 x 256, enough for every problem.
DEMO_INPUT = (96, 128)


async def _ensure_plot_type(session: AsyncSession, spec: PlotTypeSpec) -> tuple[int, bool]:
    """The plot type's id and whether it already has an active model."""
    try:
        pt = await get_plot_type(session, spec.name)
        return pt.id, pt.active_model_id is not None
    except NotFound:
        pt = await add_plot_type(
            session, spec.name, spec.labels, detector=spec.detector, collect_percent=5.0
        )
        # The demo hall's own training defaults: a CPU-sized model, every image once.
        pt.default_architecture, pt.default_sampling = "small", "normal"
        return pt.id, False


async def bootstrap_demo(
    settings: TrainerSettings, per_label: int = 40, epochs: int = 10, force: bool = False
) -> list[str]:
    """Set up and train the demo hall; returns one summary line per plot type."""
    engine = make_engine(settings.db_url)
    sessions = make_sessionmaker(engine)
    lines = []
    try:
        for i, spec in enumerate(hall_catalog("demo")):
            async with sessions() as session, session.begin():
                _, has_model = await _ensure_plot_type(session, spec)
            if has_model and not force:
                lines.append(f"{spec.name}: active model present, skipped")
                continue
            with tempfile.TemporaryDirectory(prefix="hydra-demo-") as tmp:
                write_labelled_set(Path(tmp), spec, dict.fromkeys(spec.labels, per_label), seed=i)
                async with sessions() as session, session.begin():
                    await import_images(
                        session, scan_tree(Path(tmp)), spec.name, settings.storage_root
                    )
            options = TrainOptions(
                architecture="small",
                # Adam: the small CNN converges in a few epochs on ~100 images; Hydra's SGD
                # defaults (made for InceptionV3 on large sets) need many more.
                optimizer="adam",
                learning_rate=0.001,
                epochs=epochs,
                patience=3,
                seed=i,
                input_height=DEMO_INPUT[0],
                input_width=DEMO_INPUT[1],
            )
            outcome = await train_plot_type(settings, spec.name, options, trained_by="bootstrap")
            async with sessions() as session, session.begin():
                await promote(session, outcome.model_id, by="bootstrap")
            ev = outcome.evaluation
            f1 = ev.f1_per_label().get("Bad", 0.0)
            line = (
                f"{spec.name}: model {outcome.model_id} v{outcome.version} active, "
                f"{outcome.epochs_run} epochs, test F1(Bad) {f1:.2f} on {len(ev.images)} "
                f"test images{' (indicative)' if ev.indicative else ''}"
            )
            log.info(
                "demo model ready", extra={"plot_type": spec.name, "model_id": outcome.model_id}
            )
            lines.append(line)
    finally:
        await engine.dispose()
    return lines
