"""A populated Hall D for the browser tests, written with the schema classes.

Twenty-four hours of a hall: every GlueX plot type with a model and its thresholds, run
history with stage timings over ten runs (two detectors turning Bad near the end), the
monitoring log with its transitions, the Run page's current state with live images and
Grad-CAM overlays, images waiting to be labelled, a model library with an evaluated model,
its training set and the disagreements of its training report, news, run conditions,
service heartbeats, and one user of each kind the tests act as.

Images are real PNGs drawn by the trainer's simulator; heat maps are rendered by the
keeper's own renderer from a Grad-CAM-like blob over the simulated defect. A test that adds
a plot type of its own takes it out again with ``remove_plot_type``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from hydra.v1 import report_pb2

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import (
    Classification,
    InferenceStatus,
    KeptReason,
    Label,
    LabelHistory,
    Model,
    ModelDrift,
    ModelEvaluation,
    ModelStatus,
    MonitoringLog,
    News,
    Plot,
    PlotType,
    PlotTypeClassification,
    Role,
    RunCondition,
    RunHistory,
    RunTime,
    Split,
    StageHourly,
    Threshold,
    TrainingReport,
    TrainingSet,
    TrainingSetImage,
    User,
    UserPermission,
    utcnow,
)
from hydra_common.ids import uuid7
from hydra_common.stagestats import hourly_rows
from hydra_keeper.storage import render_heatmap
from hydra_testsupport.seeding import recount_run_verdicts
from hydra_trainer.catalog import PlotTypeSpec, hall_catalog
from hydra_trainer.plots import Truth, make_plot

CURRENT_RUN = 72310
RUNS = range(CURRENT_RUN - 9, CURRENT_RUN + 1)
CHUNKS = 4
SLOT = timedelta(minutes=36)  # ten runs of four chunks fill the trailing 24 hours

LIVE = "TAGM_occupancy"  # Good now; the Run-page test turns it Bad through the keeper
LABELLING = "BCAL_occupancy"  # 130 images waiting for a label
PAINTING = "CDC_occupancy"  # the Labeler's screenshot: some waiting, many labelled
LIBRARY = "FCAL_occupancy"  # three models, the active one evaluated, thresholds to edit
NO_MODEL = "fa125_itrig_errors"
UNCONFIRMED = "DIRC_occupancy"

# (plot type, first run) of the problems the hall had: Bad from that run on.
BAD_FROM = {"FDC_occupancy": CURRENT_RUN - 2, "RF_TAGH_selftiming": CURRENT_RUN}

USERS = {
    # key: (username, display name, role, plot types it may label / edit models of)
    "admin": ("admin", "Administrator", Role.ADMIN, ()),
    "expert": ("mstaib", "Mark Staib", Role.EXPERT, (LIBRARY,)),
    "labeler": ("njarvis", "Naomi Jarvis", Role.LABELER, (LABELLING, PAINTING)),
    "viewer": ("shift", "Shift crew", Role.VIEWER, ()),
}


@dataclass
class Seeded:
    """What the tests need to find again."""

    plot_types: dict[str, int] = field(default_factory=dict)
    active_model: dict[str, int] = field(default_factory=dict)
    users: dict[str, tuple[int, str]] = field(default_factory=dict)  # key -> (id, username)
    password_hash: str = ""
    labelling_plot_ids: list[int] = field(default_factory=list)


class Images:
    """Simulated plot images written under the storage root."""

    def __init__(self, storage: Path, seed: int = 2026) -> None:
        self.storage = storage
        self.rng = np.random.default_rng(seed)

    def draw(self, spec: PlotTypeSpec, label: str) -> tuple[bytes, Truth]:
        """A PNG of ``spec`` whose true label is ``label`` (NoModel plots look Good)."""
        shown = label if label in spec.labels else "Good"
        image, truth = make_plot(spec, shown, self.rng)
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue(), truth

    def write(self, rel: str, data: bytes) -> str:
        """Write bytes at ``rel`` under the storage root; returns ``rel``."""
        path = self.storage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return rel


def heat_map_for(truth: Truth, height: int = 48, width: int = 64) -> report_pb2.HeatMap:
    """A Grad-CAM-like map: a blob over the injected defect's box, peak 1 (image 256x192)."""
    x0, y0, x1, y1 = truth.box or (96, 64, 160, 128)
    ys, xs = np.mgrid[0:height, 0:width]
    cx, cy = (x0 + x1) / 2 / 256 * width, (y0 + y1) / 2 / 192 * height
    sx, sy = max(2.0, (x1 - x0) / 256 * width / 2), max(2.0, (y1 - y0) / 192 * height / 2)
    heat = np.exp(-(((xs - cx) / sx) ** 2 + ((ys - cy) / sy) ** 2) / 2)
    heat = heat / heat.max()
    return report_pb2.HeatMap(height=height, width=width, values=heat.ravel().tolist())


def heatmap_png(truth: Truth) -> bytes:
    """The keeper's RGBA overlay of ``heat_map_for(truth)`` at the image's size."""
    png = render_heatmap(heat_map_for(truth), (256, 192))
    assert png is not None
    return png


def _verdict(
    spec: PlotTypeSpec, run: int, chunk: int, rng: np.random.Generator
) -> tuple[str, float, bool]:
    """(verdict, confidence, confirmed) of one simulated inference."""
    if spec.name == NO_MODEL:
        return "NoModel", 0.0, False
    bad_from = BAD_FROM.get(spec.name)
    if bad_from is not None and run >= bad_from and (run > bad_from or chunk >= 2):
        return "Bad", float(rng.uniform(0.82, 0.99)), True
    if spec.name == UNCONFIRMED and run == CURRENT_RUN and chunk == CHUNKS - 1:
        return "Good", 0.48, False
    if rng.random() < 0.03:
        return "Acceptable", float(rng.uniform(0.4, 0.6)), False
    return "Good", float(rng.uniform(0.9, 0.999)), True


def _stages(rng: np.random.Generator) -> dict[str, float]:
    stages = {
        "feed": float(rng.lognormal(np.log(0.6), 0.4)),
        "queue": float(rng.lognormal(np.log(0.004), 0.9)),
        "dispatch": float(rng.lognormal(np.log(0.0008), 0.5)),
        "predict": float(rng.lognormal(np.log(0.045), 0.35)),
        "report": float(rng.lognormal(np.log(0.006), 0.5)),
        "keep": float(rng.lognormal(np.log(0.018), 0.4)),
    }
    stages["total"] = sum(stages.values())
    return stages


def _weights(labels: tuple[str, ...], verdict: str, confidence: float) -> dict[str, float]:
    if verdict not in labels:
        return {}
    rest = (1.0 - confidence) / max(1, len(labels) - 1)
    return {lb: round(confidence if lb == verdict else rest, 6) for lb in labels}


class Seeder:
    """Writes the hall into the database and the storage root."""

    def __init__(self, session: Any, storage: Path, password_hash: str) -> None:
        self.s = session
        self.images = Images(storage)
        self.rng = np.random.default_rng(7)
        self.now = utcnow()
        self.out = Seeded(password_hash=password_hash)
        self.specs = {spec.name: spec for spec in hall_catalog("halld")}
        self.classes: dict[str, Classification] = {}
        self.thresholds: dict[int, dict[str, float]] = {}

    async def run(self) -> Seeded:
        """Everything, in dependency order."""
        self.classes = {c.name: c for c in await self.s.scalars(sa.select(Classification))}
        await self.users()
        await self.plot_types()
        await self.history()
        await self.labelling()
        await self.library()
        await self.extras()
        return self.out

    async def users(self) -> None:
        for key, (username, display, role, _) in USERS.items():
            user = User(
                username=username,
                display_name=display,
                role=role,
                password_hash=self.out.password_hash,
            )
            self.s.add(user)
            await self.s.flush()
            self.out.users[key] = (user.id, username)

    async def plot_types(self) -> None:
        for spec in self.specs.values():
            pt = PlotType(
                name=spec.name,
                detector=spec.detector,
                chunked=True,
                collect_percent=2.0,
                point_of_contact="GlueX detector expert",
            )
            self.s.add(pt)
            await self.s.flush()
            self.out.plot_types[spec.name] = pt.id
            self.s.add_all(
                PlotTypeClassification(plot_type_id=pt.id, classification_id=self.classes[lb].id)
                for lb in spec.labels
            )
            if spec.name != NO_MODEL:
                model = await self.model(spec, version=1, status=ModelStatus.ACTIVE)
                pt.active_model_id = model.id
                self.out.active_model[spec.name] = model.id
        for key, (_, _, _, allowed) in USERS.items():
            self.s.add_all(
                UserPermission(user_id=self.out.users[key][0], plot_type_id=self.out.plot_types[n])
                for n in allowed
            )
        await self.s.flush()

    async def model(
        self, spec: PlotTypeSpec, version: int, status: ModelStatus, **kw: Any
    ) -> Model:
        """A model of ``spec`` with max-F1 thresholds for each of its labels."""
        created = self.now - timedelta(days=30 - 7 * version)
        model = Model(
            plot_type_id=self.out.plot_types[spec.name],
            name=spec.name.lower(),
            version=version,
            architecture=kw.pop("architecture", "inceptionv3"),
            location=f"models/{spec.name.lower()}/{version}",
            input_height=192,
            input_width=256,
            label_order=list(spec.labels),
            status=status,
            trained_by="hydra-trainer",
            signed_off_by="mstaib" if status is not ModelStatus.TRAINED else None,
            epochs_run=int(self.rng.integers(12, 40)),
            created_at=created,
            promoted_at=created + timedelta(hours=2) if status is not ModelStatus.TRAINED else None,
            **kw,
        )
        self.s.add(model)
        await self.s.flush()
        values = {lb: round(float(self.rng.uniform(0.45, 0.8)), 2) for lb in spec.labels}
        self.thresholds[model.id] = values
        self.s.add_all(
            Threshold(
                model_id=model.id,
                classification_id=self.classes[lb].id,
                threshold=v,
                set_at=created,
            )
            for lb, v in values.items()
        )
        return model

    async def history(self) -> None:
        """Run history over 24 h, the monitoring log with transitions, and the Run page."""
        slots = len(RUNS) * CHUNKS
        timings: list[tuple[datetime, int, dict[str, float]]] = []
        for name, spec in self.specs.items():
            previous: tuple[str, bool] | None = None
            latest: RunHistory | None = None
            for i, (run, chunk) in enumerate((r, c) for r in RUNS for c in range(CHUNKS)):
                verdict, confidence, confirmed = _verdict(spec, run, chunk, self.rng)
                model_id = self.out.active_model.get(name)
                when = self.now - timedelta(seconds=20) - SLOT * (slots - 1 - i)
                rh = RunHistory(
                    order_id=uuid7(),
                    plot_type_id=self.out.plot_types[name],
                    run_period="RunPeriod-2026-01",
                    run_number=run,
                    chunk=chunk,
                    status=InferenceStatus.NO_MODEL if model_id is None else InferenceStatus.OK,
                    model_id=model_id,
                    verdict=verdict,
                    confidence=confidence,
                    confirmed=confirmed,
                    weights=_weights(spec.labels, verdict, confidence),
                    thresholds=self.thresholds.get(model_id or 0, {}),
                    stage_seconds=_stages(self.rng),
                    source_path=f"RunPeriod-2026-01/Run0{run}/{name}_{chunk:04d}.png",
                    predictor_id=f"predictor-{i % 2}",
                    created_at=when,
                )
                self.s.add(rh)
                await self.s.flush()
                timings.append((when, run, rh.stage_seconds))
                state = (verdict, confirmed)
                logged = model_id is not None and (not confirmed or verdict == "Bad")
                if logged:
                    transition = previous is not None and previous != state
                    self.s.add(
                        MonitoringLog(
                            run_history_id=rh.id,
                            plot_type_id=rh.plot_type_id,
                            run_number=run,
                            chunk=chunk,
                            verdict=verdict,
                            confirmed=confirmed,
                            transition=transition,
                            transition_kind="label" if transition else "",
                            alarm=confirmed and verdict == "Bad",
                            created_at=when,
                        )
                    )
                previous = state
                latest = rh
            assert latest is not None
            await self.live(spec, latest)
        # The Status page draws from the keeper's hourly figures, kept at every commit; the
        # Summary from its verdicts per run.
        self.s.add_all(StageHourly(**row) for row in hourly_rows(timings))
        await self.s.flush()
        await recount_run_verdicts(await self.s.connection())

    async def live(self, spec: PlotTypeSpec, rh: RunHistory) -> None:
        """The Run page's card of a plot type: its latest image, and heat map when Bad."""
        png, truth = self.images.draw(spec, rh.verdict)
        image = self.images.write(f"live/{spec.name}/{rh.order_id}.png", png)
        heatmap = None
        if rh.verdict == "Bad":
            heatmap = self.images.write(
                f"live/{spec.name}/{rh.order_id}.heatmap.png", heatmap_png(truth)
            )
        self.s.add(
            RunTime(
                plot_type_id=rh.plot_type_id,
                run_history_id=rh.id,
                order_id=rh.order_id,
                run_period=rh.run_period,
                run_number=rh.run_number,
                chunk=rh.chunk,
                verdict=rh.verdict,
                confidence=rh.confidence,
                confirmed=rh.confirmed,
                model_id=rh.model_id,
                image_path=image,
                heatmap_path=heatmap,
                updated_at=rh.created_at,
            )
        )

    def plot(self, name: str, label: str, run: int, chunk: int, reason: KeptReason) -> Plot:
        """A kept image with a freshly drawn PNG (and heat map when Bad)."""
        spec = self.specs[name]
        png, truth = self.images.draw(spec, label)
        oid = uuid7()
        day = self.now.strftime("%Y-%m-%d")
        heatmap = None
        if label == "Bad":
            heatmap = self.images.write(f"heatmaps/{name}/{day}/{oid}.png", heatmap_png(truth))
        return Plot(
            plot_type_id=self.out.plot_types[name],
            run_period="RunPeriod-2026-01",
            run_number=run,
            chunk=chunk,
            image_path=self.images.write(f"plots/{name}/{day}/{oid}.png", png),
            heatmap_path=heatmap,
            order_id=oid,
            kept_reason=reason,
            source_path=f"RunPeriod-2026-01/Run0{run}/{name}_{chunk:04d}.png",
            created_at=self.now - timedelta(hours=6),
        )

    def _label(self, plot: Plot, label: str, user_key: str, when: datetime) -> None:
        cid = self.classes[label].id
        uid = self.out.users[user_key][0]
        self.s.add(
            Label(
                plot_id=plot.id,
                plot_type_id=plot.plot_type_id,
                classification_id=cid,
                user_id=uid,
                labelled_at=when,
            )
        )
        self.s.add(
            LabelHistory(plot_id=plot.id, new_classification_id=cid, user_id=uid, changed_at=when)
        )

    async def labelling(self) -> None:
        """Images waiting for a label (two plot types), and labelled ones for the counts."""
        waiting = [
            self.plot(
                LABELLING, "Good" if i % 9 else "Bad", 72300 + i // 13, i % 13, KeptReason.UNBIASED
            )
            for i in range(130)
        ]
        self.s.add_all(waiting)
        mix = ["Good"] * 5 + ["Bad", "Acceptable", "NoData"]
        painting = [
            self.plot(PAINTING, mix[i % len(mix)], 72306 + i // 12, i % 12, KeptReason.UNCONFIRMED)
            for i in range(48)
        ]
        labelled = [
            self.plot(PAINTING, mix[i % len(mix)], 72200 + i // 20, i % 20, KeptReason.UNBIASED)
            for i in range(160)
        ]
        self.s.add_all(painting + labelled)
        await self.s.flush()
        self.out.labelling_plot_ids = sorted(p.id for p in waiting)
        for i, plot in enumerate(labelled):
            who = ("labeler", "admin", "labeler")[i % 3]
            self._label(plot, mix[i % len(mix)], who, self.now - timedelta(hours=30 - i / 8))

    async def library(self) -> None:
        """LIBRARY's models: v1 retired, v2 active (evaluated), v3 trained, not promoted."""
        spec = self.specs[LIBRARY]
        pt_id = self.out.plot_types[LIBRARY]
        v1_id = self.out.active_model[LIBRARY]
        v1 = await self.s.get(Model, v1_id)
        v1.status = ModelStatus.RETIRED
        share = {"Good": 200, "Acceptable": 30, "Bad": 50, "NoData": 20}
        # A few drawings per label, shared by the library's images (only thumbnails show).
        pool: dict[str, list[str]] = {}
        day = self.now.strftime("%Y-%m-%d")
        for label in share:
            pool[label] = [
                self.images.write(
                    f"plots/{LIBRARY}/{day}/pool-{label}-{k}.png", self.images.draw(spec, label)[0]
                )
                for k in range(6)
            ]
        plots: list[tuple[Plot, str]] = []
        for label, n in share.items():
            for k in range(n):
                p = Plot(
                    plot_type_id=pt_id,
                    run_number=71900 + k,
                    chunk=k % 8,
                    image_path=pool[label][k % 6],
                    order_id=uuid7(),
                    kept_reason=KeptReason.BAD if label == "Bad" else KeptReason.UNBIASED,
                    created_at=self.now - timedelta(days=20),
                )
                plots.append((p, label))
        self.s.add_all(p for p, _ in plots)
        await self.s.flush()
        for i, (p, label) in enumerate(plots):
            self._label(p, label, "expert", self.now - timedelta(days=19, minutes=-i))
        ts = TrainingSet(
            plot_type_id=pt_id,
            sampling_method="undersample",
            class_counts=dict.fromkeys(share, share["Bad"]),
            seed=7,
            created_by="mstaib",
            created_at=self.now - timedelta(days=17),
        )
        self.s.add(ts)
        await self.s.flush()
        test: list[tuple[Plot, str]] = []
        for label in share:
            members = [p for p, lb in plots if lb == label]
            cut = int(len(members) * 0.7)
            drawn = np.bincount(self.rng.integers(0, cut, share["Bad"]), minlength=cut)
            self.s.add_all(
                TrainingSetImage(
                    training_set_id=ts.id,
                    plot_id=p.id,
                    classification_id=self.classes[label].id,
                    split=Split.TRAIN,
                    copies=int(c),
                )
                for p, c in zip(members[:cut], drawn, strict=True)
                if c > 0
            )
            test += [(p, label) for p in members[cut:]]
        # As the trainer records it: images per split and label (train counts the copies).
        ts.class_counts = {
            "train": dict.fromkeys(share, share["Bad"]),
            "validation": {},
            "test": {label: sum(1 for _, lb in test if lb == label) for label in share},
        }
        v2 = await self.model(
            spec,
            version=2,
            status=ModelStatus.ACTIVE,
            training_set_id=ts.id,
            sampling_method="undersample",
            parent_model_id=v1_id,
            metrics={"accuracy": 0.94},
        )
        v3 = await self.model(spec, version=3, status=ModelStatus.TRAINED, parent_model_id=v2.id)
        (await self.s.get(PlotType, pt_id)).active_model_id = v2.id
        self.out.active_model[LIBRARY] = v2.id
        await self.evaluate(v2, test, spec.labels)
        await self.evaluate(v3, test, spec.labels, report=False)

    async def evaluate(
        self,
        model: Model,
        test: list[tuple[Plot, str]],
        labels: tuple[str, ...],
        report: bool = True,
    ) -> None:
        """Held-out weights (the enhanced confusion matrix) and the disagreements."""
        for plot, true in test:
            wrong = self.rng.random() < 0.1
            predicted = str(self.rng.choice([lb for lb in labels if lb != true])) if wrong else true
            top = float(self.rng.uniform(0.4, 0.75) if wrong else self.rng.beta(8, 1.2))
            weights = _weights(labels, predicted, max(top, 1 / len(labels) + 0.01))
            self.s.add(
                ModelEvaluation(
                    model_id=model.id,
                    plot_id=plot.id,
                    true_classification_id=self.classes[true].id,
                    predicted_classification_id=self.classes[predicted].id,
                    weights=weights,
                    split=Split.TEST,
                )
            )
            if wrong and report:
                self.s.add(
                    TrainingReport(
                        model_id=model.id,
                        plot_id=plot.id,
                        human_classification_id=self.classes[true].id,
                        model_classification_id=self.classes[predicted].id,
                        model_weight=weights[predicted],
                    )
                )

    async def extras(self) -> None:
        """News, run conditions and the services' heartbeats."""
        self.s.add_all(
            [
                News(
                    title="Beam studies 14:00-18:00",
                    body="Accelerator tune-up; expect NoData on the tagger plots.",
                    severity="warning",
                    author="run coordinator",
                    created_at=self.now - timedelta(hours=1),
                ),
                News(
                    title="New FCAL model v2 active",
                    body="Trained on 300 labelled images; thresholds at max F1.",
                    author="mstaib",
                    created_at=self.now - timedelta(days=1),
                ),
                RunCondition(
                    run_number=CURRENT_RUN,
                    beam_current=215.0,
                    run_type="PRODUCTION",
                    recorded_at=self.now - timedelta(minutes=50),
                ),
            ]
        )


async def seed(url: str, storage: Path, password_hash: str) -> Seeded:
    """Write the hall into the (migrated, empty) database at ``url``."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await Seeder(session, storage, password_hash).run()
    finally:
        await engine.dispose()


async def remove_plot_type(url: str, plot_type_id: int) -> None:
    """Delete a plot type a test added, with its models, images, inferences, labels and
    drift, so the shared hall's other pages keep their counts. Children go first: not every
    foreign key cascades, and the plot type names its active model."""
    plots = sa.select(Plot.id).where(Plot.plot_type_id == plot_type_id)
    models = sa.select(Model.id).where(Model.plot_type_id == plot_type_id)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(PlotType).where(PlotType.id == plot_type_id).values(active_model_id=None)
            )
            for delete in (
                sa.delete(ModelDrift).where(ModelDrift.plot_type_id == plot_type_id),
                sa.delete(ModelEvaluation).where(ModelEvaluation.model_id.in_(models)),
                sa.delete(LabelHistory).where(LabelHistory.plot_id.in_(plots)),
                sa.delete(Label).where(Label.plot_type_id == plot_type_id),
                sa.delete(RunHistory).where(RunHistory.plot_type_id == plot_type_id),
                sa.delete(Plot).where(Plot.plot_type_id == plot_type_id),
                sa.delete(Model).where(Model.plot_type_id == plot_type_id),
                sa.delete(PlotTypeClassification).where(
                    PlotTypeClassification.plot_type_id == plot_type_id
                ),
                sa.delete(PlotType).where(PlotType.id == plot_type_id),
            ):
                await conn.execute(delete)
    finally:
        await engine.dispose()
