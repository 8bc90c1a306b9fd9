"""``hydra train``: from labelled images in the database to an exported, evaluated model.

Steps: load the plot type's labelled images; drop rare classes; split (train, validation,
test) and sample the train part; record the training set and a ``training`` model row; fit
(early stopping on validation); export the SavedModel as the next version; through its
serving signature, choose thresholds on the validation images and measure everything on the
test images; record thresholds, evaluations, disagreements (training reports) and the
model's figures. The model ends ``trained``: it serves only after ``hydra promote``. A
failure marks the model (and the training run, when there is one) ``failed`` with the
reason; a run cancelled from the web stops at its next progress report.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import sqlalchemy as sa
import tensorflow as tf
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_common.db import schema as s
from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.errors import HydraError, InvalidInput
from hydra_common.logs import get_logger
from hydra_common.settings import HydraSettings
from hydra_common.training import SAMPLING_METHODS, resolve_defaults
from hydra_trainer import __version__
from hydra_trainer.architectures import get_architecture
from hydra_trainer.dataset import (
    LabelledImage,
    SplitSet,
    build_split_set,
    drop_rare_classes,
    expand,
)
from hydra_trainer.evaluate import Evaluation, evaluate_weights, predict_files, truth_of
from hydra_trainer.export import export_model
from hydra_trainer.init import resolve_init
from hydra_trainer.registry import model_name, next_version
from hydra_trainer.store import classifications, get_plot_type, load_labelled_images, valid_labels
from hydra_trainer.thresholds import ThresholdChoice, choose_thresholds
from hydra_trainer.train import FitResult, Progress, TrainOptions, fit

log = get_logger(__name__)


@dataclass
class TrainOutcome:
    """What a training produced."""

    model_id: int
    name: str
    version: int
    location: Path
    labels: list[str]
    class_counts: dict[str, int]
    dropped: dict[str, int]
    epochs_run: int
    evaluation: Evaluation
    notes: list[str] = field(default_factory=list)


class TrainingCancelled(HydraError):
    """The training run was cancelled (its row says so); the trainer stops."""


class RunProgress:
    """Reports progress to the caller and, with a run id, to its ``training_runs`` row."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        run_id: int | None,
        callback: Progress | None,
    ) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.callback = callback
        self.loop = asyncio.get_running_loop()

    async def update(
        self, fraction: float, message: str, status: s.TrainingRunStatus | None = None, **extra: Any
    ) -> None:
        """Record progress (0..1) and a message."""
        if self.callback is not None:
            self.callback(fraction, message)
        if self.run_id is None:
            return
        async with self.sessions() as session, session.begin():
            run = await session.get(s.TrainingRun, self.run_id)
            if run is None:
                raise InvalidInput(f"no training run with id {self.run_id}")
            if run.status == s.TrainingRunStatus.CANCELLED:
                raise TrainingCancelled(f"training run {self.run_id} was cancelled")
            run.progress = max(0.0, min(fraction, 1.0))
            run.message = message
            run.updated_at = s.utcnow()
            if status is not None:
                run.status = status
            for key, value in extra.items():
                setattr(run, key, value)

    def from_thread(self, lo: float, hi: float) -> Progress:
        """A progress function for code running in a worker thread, mapped into lo..hi."""

        def report(fraction: float, message: str) -> None:
            fut = asyncio.run_coroutine_threadsafe(
                self.update(lo + (hi - lo) * fraction, message), self.loop
            )
            fut.result(timeout=60)

        return report


def _framework_versions() -> dict[str, str]:
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "hydra_trainer": __version__,
    }


async def _record_training_set(
    session: AsyncSession,
    plot_type: s.PlotType,
    split: SplitSet,
    options: TrainOptions,
    dropped: dict[str, int],
    ids: dict[str, int],
    user: str,
) -> s.TrainingSet:
    training_set = s.TrainingSet(
        plot_type_id=plot_type.id,
        sampling_method=options.sampling or "",
        class_counts=split.counts(),
        dropped_classes=dropped,
        seed=options.seed,
        created_by=user,
    )
    session.add(training_set)
    await session.flush()
    rows = [(i, s.Split.TRAIN, c) for i, c in split.train]
    rows += [(i, s.Split.VALIDATION, 1) for i in split.validation]
    rows += [(i, s.Split.TEST, 1) for i in split.test]
    session.add_all(
        s.TrainingSetImage(
            training_set_id=training_set.id,
            plot_id=item.plot_id,
            classification_id=ids[item.label],
            split=where,
            copies=copies,
        )
        for item, where, copies in rows
    )
    await session.flush()
    return training_set


def _count(items: list[LabelledImage]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item.label] = out.get(item.label, 0) + 1
    return out


def _check_files(items: list[LabelledImage]) -> None:
    missing = [i.path for i in items if not Path(i.path).is_file()]
    if missing:
        raise InvalidInput(
            f"{len(missing)} labelled image(s) missing from storage, e.g. {missing[0]}"
        )


async def train_plot_type(
    settings: HydraSettings,
    plot_type_name: str,
    options: TrainOptions,
    *,
    run_id: int | None = None,
    progress: Progress | None = None,
    trained_by: str = "",
) -> TrainOutcome:
    """Train, export and evaluate a new model version for a plot type."""
    engine = make_engine(settings.db_url)
    sessions = make_sessionmaker(engine)
    reporter = RunProgress(sessions, run_id, progress)
    model_id: int | None = None
    try:
        await reporter.update(0.0, "loading labelled images", s.TrainingRunStatus.RUNNING)
        prepared = await _prepare(sessions, settings, plot_type_name, options, trained_by)
        model_id = prepared.model_id
        await reporter.update(0.05, f"training model {model_id}", model_id=model_id)
        outcome = await _train_and_record(sessions, settings, prepared, reporter)
        await reporter.update(1.0, f"model id: {model_id}", s.TrainingRunStatus.SUCCEEDED)
        return outcome
    except TrainingCancelled as exc:
        log.warning("training cancelled", extra={"plot_type": plot_type_name, "run_id": run_id})
        await _mark_failed(sessions, model_id, str(exc))
        raise
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        log.error("training failed", extra={"plot_type": plot_type_name, "reason": reason})
        await _mark_failed(sessions, model_id, reason)
        if run_id is not None:
            await reporter.update(0.0, f"failed: {reason}", s.TrainingRunStatus.FAILED)
        raise
    finally:
        await engine.dispose()


@dataclass
class _Prepared:
    model_id: int
    name: str
    version: int
    labels: list[str]
    split: SplitSet
    class_counts: dict[str, int]
    dropped: dict[str, int]
    label_ids: dict[str, int]
    options: TrainOptions  # resolved: architecture, sampling and the initial weights file
    priors: dict[str, float]  # the active model's thresholds, for thin validation sets


async def _active_thresholds(session: AsyncSession, plot_type: s.PlotType) -> dict[str, float]:
    """The plot type's active model's thresholds by label (none without an active model)."""
    if plot_type.active_model_id is None:
        return {}
    rows = await session.execute(
        sa.select(s.Classification.name, s.Threshold.threshold)
        .join(s.Classification, s.Classification.id == s.Threshold.classification_id)
        .where(s.Threshold.model_id == plot_type.active_model_id)
    )
    return {name: float(value) for name, value in rows.tuples()}


def _resolve(options: TrainOptions, plot_type: s.PlotType, settings: HydraSettings) -> TrainOptions:
    """Fill in what the caller left open: the plot type's defaults, then Hydra's."""
    arch_name, sampling = resolve_defaults(
        options.architecture,
        options.sampling,
        plot_type.default_architecture,
        plot_type.default_sampling,
    )
    if sampling not in SAMPLING_METHODS:
        raise InvalidInput(f"unknown sampling {sampling!r} (known: {', '.join(SAMPLING_METHODS)})")
    arch = get_architecture(arch_name)
    weights = resolve_init(options.init, arch, getattr(settings, "weights_dir", "") or None)
    init = options.init or ("random" if weights is None else "imagenet")
    return dataclasses.replace(
        options, architecture=arch_name, sampling=sampling, init=init, weights_path=weights
    )


async def _prepare(
    sessions: async_sessionmaker[AsyncSession],
    settings: HydraSettings,
    plot_type_name: str,
    options: TrainOptions,
    trained_by: str,
) -> _Prepared:
    user = trained_by or getattr(settings, "trainer_user", "") or getpass.getuser()
    async with sessions() as session, session.begin():
        plot_type = await get_plot_type(session, plot_type_name)
        valid = [c.name for c in await valid_labels(session, plot_type.id)]
        items = await load_labelled_images(session, plot_type, settings.storage_root)
        if not items:
            raise InvalidInput(f"no labelled images for plot type {plot_type_name!r}")
        options = _resolve(options, plot_type, settings)
        assert options.architecture is not None and options.sampling is not None
        arch = get_architecture(options.architecture)
        kept, dropped = drop_rare_classes(items)
        present = {i.label for i in kept}
        labels = [lb for lb in valid if lb in present]
        if len(labels) < 2:
            raise InvalidInput(
                f"plot type {plot_type_name!r} needs at least 2 labels with 2 or more images "
                f"each; has {_count(items)}"
            )
        _check_files(kept)
        split = build_split_set(kept, options.sampling, options.split_rule(), options.seed)
        ids = {name: c.id for name, c in (await classifications(session)).items()}
        training_set = await _record_training_set(
            session, plot_type, split, options, dropped, ids, user
        )
        name = model_name(plot_type.name)
        version = await next_version(session, name, settings.model_root)
        height = options.input_height or arch.input_size[0]
        width = options.input_width or arch.input_size[1]
        model = s.Model(
            plot_type_id=plot_type.id,
            name=name,
            version=version,
            architecture=options.architecture,
            location=str(settings.model_root / name / str(version)),
            input_height=height,
            input_width=width,
            input_channels=3,
            label_order=labels,
            sampling_method=options.sampling,
            hyperparameters=options.as_dict() | {"input_height": height, "input_width": width},
            framework_versions=_framework_versions(),
            training_set_id=training_set.id,
            parent_model_id=plot_type.active_model_id,
            status=s.ModelStatus.TRAINING,
            trained_by=user,
        )
        session.add(model)
        await session.flush()
        if dropped:
            log.warning("classes dropped", extra={"plot_type": plot_type_name, "dropped": dropped})
        priors = await _active_thresholds(session, plot_type)
        return _Prepared(
            model.id, name, version, labels, split, _count(kept), dropped, ids, options, priors
        )


async def _train_and_record(
    sessions: async_sessionmaker[AsyncSession],
    settings: HydraSettings,
    p: _Prepared,
    reporter: RunProgress,
) -> TrainOutcome:
    options = p.options
    assert options.architecture is not None
    arch = get_architecture(options.architecture)
    fitted: FitResult = await asyncio.to_thread(
        fit,
        arch,
        p.labels,
        expand(p.split.train),
        p.split.validation,
        options,
        reporter.from_thread(0.05, 0.85),
    )
    await reporter.update(0.88, "exporting SavedModel")
    location = await asyncio.to_thread(
        export_model,
        fitted.model,
        settings.model_root,
        p.name,
        p.version,
        p.labels,
        architecture=arch,
        metadata={"model_id": p.model_id, "architecture": options.architecture},
    )
    await reporter.update(0.93, "thresholds on validation, figures on test")
    val, test = p.split.validation, p.split.test
    trained_unique = list(dict.fromkeys(i for i, _ in p.split.train))
    # One pass over every unique image: validation picks thresholds, test gives the figures,
    # and every image feeds the disagreements experts review.
    paths = [i.path for i in [*val, *test, *trained_unique]]
    weights = await asyncio.to_thread(predict_files, location, paths)
    weights = weights.reshape(len(paths), len(p.labels))
    val_w = weights[: len(val)]
    test_w = weights[len(val) : len(val) + len(test)]
    choices = choose_thresholds(val_w, truth_of(p.labels, val), p.labels, p.priors)
    evaluation = evaluate_weights(
        p.labels,
        test,
        test_w,
        choices,
        split_counts=p.split.counts(),
        indicative=p.split.indicative(),
    )
    scored = [
        *zip(val, val_w, [s.Split.VALIDATION] * len(val), strict=True),
        *zip(test, test_w, [s.Split.TEST] * len(test), strict=True),
    ]
    trained = list(zip(trained_unique, weights[len(val) + len(test) :], strict=True))
    async with sessions() as session, session.begin():
        await _record_results(session, p, evaluation, choices, scored, trained, fitted)
    for note in evaluation.notes():
        log.warning("training note", extra={"plot_type": p.name, "note": note})
    return TrainOutcome(
        model_id=p.model_id,
        name=p.name,
        version=p.version,
        location=location,
        labels=p.labels,
        class_counts=p.class_counts,
        dropped=p.dropped,
        epochs_run=fitted.epochs_run,
        evaluation=evaluation,
        notes=evaluation.notes(),
    )


async def _record_results(
    session: AsyncSession,
    p: _Prepared,
    ev: Evaluation,
    choices: list[ThresholdChoice],
    scored: list[tuple[LabelledImage, np.ndarray, s.Split]],
    trained: list[tuple[LabelledImage, np.ndarray]],
    fitted: FitResult,
) -> None:
    ids = p.label_ids
    session.add_all(
        s.Threshold(
            model_id=p.model_id,
            classification_id=ids[c.label],
            threshold=c.threshold,
            method=c.method,
            set_by="trainer",
        )
        for c in choices
    )
    for item, w, split in scored:
        session.add(
            s.ModelEvaluation(
                model_id=p.model_id,
                plot_id=item.plot_id,
                true_classification_id=ids[item.label],
                predicted_classification_id=ids[p.labels[int(np.argmax(w))]],
                weights={lb: float(v) for lb, v in zip(p.labels, w, strict=True)},
                split=split,
            )
        )
    # Disagreements on every image the model saw or was measured on, for experts to review.
    everything = [(item, w) for item, w, _ in scored] + trained
    for item, w in everything:
        top = int(np.argmax(w))
        if p.labels[top] != item.label:
            session.add(
                s.TrainingReport(
                    model_id=p.model_id,
                    plot_id=item.plot_id,
                    human_classification_id=ids[item.label],
                    model_classification_id=ids[p.labels[top]],
                    model_weight=float(w[top]),
                )
            )
    model = await session.get(s.Model, p.model_id)
    assert model is not None
    model.status = s.ModelStatus.TRAINED
    model.epochs_run = fitted.epochs_run
    model.metrics = ev.metrics() | {
        "history": fitted.history,
        "class_counts": p.class_counts,
        "dropped_classes": p.dropped,
    }


async def _mark_failed(
    sessions: async_sessionmaker[AsyncSession], model_id: int | None, reason: str
) -> None:
    if model_id is None:
        return
    async with sessions() as session, session.begin():
        model = await session.get(s.Model, model_id)
        if model is not None:
            model.status = s.ModelStatus.FAILED
            model.metrics = {"error": reason[:2000]}
