"""Hydra's database schema: every concept Hydra keeps, as SQLAlchemy 2 tables.

The same schema runs on MySQL/MariaDB (``asyncmy``, production) and SQLite (``aiosqlite``,
the embedded default). Migrations in ``hydra_common/db/migrations`` create it; services
never call ``create_all()``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes, stored naive (UTC) with microseconds on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Hydra stores aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


# MySQL's TEXT stops at 64 KiB; weights of a run and heat-map metadata fit, reports may not.
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql")
Json = sa.JSON().with_variant(mysql.JSON(), "mysql")


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (needed for migrations on MySQL)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    # Every mapped class here is a plain table (SQLAlchemy's typing advice), so
    # ``Model.__table__`` can go to insert()/update() and the helpers that take a Table.
    __table__: ClassVar[sa.Table]
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: Json, list[Any]: Json}


def _enum(e: type[enum.Enum], name: str) -> sa.Enum:
    return sa.Enum(
        e,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda x: [m.value for m in x],
        validate_strings=True,
    )


class KeptReason(enum.StrEnum):
    """Why an image was kept for labelling."""

    BAD = "bad"
    UNCONFIRMED = "unconfirmed"
    UNBIASED = "unbiased"
    IMPORTED = "imported"
    UNCERTAIN = "uncertain"  # a margin below HYDRA_KEEP_MARGIN_BELOW (hydra_common.uncertainty)


class ModelStatus(enum.StrEnum):
    """Life cycle of a model: only an active model serves."""

    TRAINING = "training"
    TRAINED = "trained"
    ACTIVE = "active"
    RETIRED = "retired"
    FAILED = "failed"


class Role(enum.StrEnum):
    """Hydra's user roles."""

    ADMIN = "admin"
    DEVELOPER = "developer"
    EXPERT = "expert"
    LABELER = "labeler"
    VIEWER = "viewer"
    LIAISON = "liaison"


class Split(enum.StrEnum):
    """Where an image of a training set went."""

    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


class InferenceStatus(enum.StrEnum):
    """Outcome of one inference (mirrors hydra.v1.ReportStatus)."""

    OK = "ok"
    NO_MODEL = "no_model"
    ERROR = "error"


class TrainingRunStatus(enum.StrEnum):
    """State of a training request."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# --- plot types and labels -------------------------------------------------------------


class Classification(Base):
    """A label from the shared set (Good, Bad, NoData, ...), with its display colour."""

    __tablename__ = "classifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(32), unique=True)
    color: Mapped[str] = mapped_column(sa.String(16), default="#888888")
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    trainable: Mapped[bool] = mapped_column(default=True)  # False for "Ignore"
    alarm: Mapped[bool] = mapped_column(default=False)  # True for "Bad": heat map + alarm


class PlotType(Base):
    """A kind of monitoring plot; each has its own model ("Hydra head")."""

    __tablename__ = "plot_types"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    file_type: Mapped[str] = mapped_column(sa.String(8), default="png")
    detector: Mapped[str] = mapped_column(sa.String(64), default="", index=True)
    chunked: Mapped[bool] = mapped_column(default=False)
    collect_percent: Mapped[float] = mapped_column(default=1.0)
    ignored: Mapped[bool] = mapped_column(default=False)
    point_of_contact: Mapped[str] = mapped_column(sa.String(128), default="")
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    active_model_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("models.id", use_alter=True, ondelete="SET NULL"), default=None
    )
    # The hall's training defaults for this plot type; None: Hydra's (hydra_common.training).
    default_architecture: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    default_sampling: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        sa.CheckConstraint("collect_percent >= 0 AND collect_percent <= 100", name="collect"),
    )

    valid_classifications: Mapped[list[Classification]] = relationship(
        secondary="plot_type_classifications", order_by="Classification.id", lazy="selectin"
    )


class PlotTypeClassification(Base):
    """A label that is valid for a plot type."""

    __tablename__ = "plot_type_classifications"
    plot_type_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plot_types.id", ondelete="CASCADE"), primary_key=True
    )
    classification_id: Mapped[int] = mapped_column(
        sa.ForeignKey("classifications.id"), primary_key=True
    )


class Plot(Base):
    """An image kept for labelling (and training), stored under the storage root."""

    __tablename__ = "plots"
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id"), index=True)
    run_period: Mapped[str] = mapped_column(sa.String(64), default="")
    run_number: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    chunk: Mapped[int] = mapped_column(default=-1)
    image_path: Mapped[str] = mapped_column(sa.String(512))
    heatmap_path: Mapped[str | None] = mapped_column(sa.String(512), default=None)
    order_id: Mapped[str | None] = mapped_column(sa.String(36), unique=True, default=None)
    kept_reason: Mapped[KeptReason] = mapped_column(_enum(KeptReason, "kept_reason"))
    source_path: Mapped[str] = mapped_column(sa.String(1024), default="")
    file_time: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    __table_args__ = (
        # Lets labels reference (plot, plot type) so a label's plot type is the plot's.
        sa.UniqueConstraint("id", "plot_type_id", name="uq_plots_id_plot_type"),
        sa.Index("ix_plots_type_run_chunk", "plot_type_id", "run_number", "chunk"),
    )


class Label(Base):
    """The current expert label of a plot (one per plot); history is in label_history."""

    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_id: Mapped[int] = mapped_column(unique=True)
    plot_type_id: Mapped[int] = mapped_column(index=True)
    classification_id: Mapped[int] = mapped_column()
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), default=None)
    labelled_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["plot_id", "plot_type_id"], ["plots.id", "plots.plot_type_id"], ondelete="CASCADE"
        ),
        # Refuses a label that is not valid for the plot's type.
        sa.ForeignKeyConstraint(
            ["plot_type_id", "classification_id"],
            [
                "plot_type_classifications.plot_type_id",
                "plot_type_classifications.classification_id",
            ],
        ),
    )


class LabelHistory(Base):
    """Every label change: who, when, from what to what, and where it was made."""

    __tablename__ = "label_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_id: Mapped[int] = mapped_column(sa.ForeignKey("plots.id", ondelete="CASCADE"), index=True)
    old_classification_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("classifications.id"), default=None
    )
    new_classification_id: Mapped[int] = mapped_column(sa.ForeignKey("classifications.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), default=None)
    source: Mapped[str] = mapped_column(sa.String(32), default="labeler")
    changed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


# --- models, training, evaluation --------------------------------------------------------


class Model(Base):
    """A trained model for one plot type, and where the model server finds it."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(128))  # model-server name
    version: Mapped[int] = mapped_column(sa.BigInteger)  # model-server version directory
    architecture: Mapped[str] = mapped_column(sa.String(64))
    location: Mapped[str] = mapped_column(sa.String(1024), default="")
    input_height: Mapped[int] = mapped_column(default=0)
    input_width: Mapped[int] = mapped_column(default=0)
    input_channels: Mapped[int] = mapped_column(default=3)
    label_order: Mapped[list[Any]] = mapped_column(default=list)
    sampling_method: Mapped[str] = mapped_column(sa.String(32), default="normal")
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    framework_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    epochs_run: Mapped[int] = mapped_column(default=0)
    training_set_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("training_sets.id"), default=None
    )
    parent_model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("models.id"), default=None)
    status: Mapped[ModelStatus] = mapped_column(
        _enum(ModelStatus, "model_status"), default=ModelStatus.TRAINING
    )
    trained_by: Mapped[str] = mapped_column(sa.String(128), default="")
    signed_off_by: Mapped[str | None] = mapped_column(sa.String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(default=None)
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_models_name_version"),)


class TrainingSet(Base):
    """The images a model was trained on, and how they were sampled."""

    __tablename__ = "training_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id"), index=True)
    sampling_method: Mapped[str] = mapped_column(sa.String(32))
    class_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dropped_classes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(sa.String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingSetImage(Base):
    """One image of a training set: its label at the time, split and copies drawn."""

    __tablename__ = "training_set_images"
    training_set_id: Mapped[int] = mapped_column(
        sa.ForeignKey("training_sets.id", ondelete="CASCADE"), primary_key=True
    )
    plot_id: Mapped[int] = mapped_column(sa.ForeignKey("plots.id"), primary_key=True)
    classification_id: Mapped[int] = mapped_column(sa.ForeignKey("classifications.id"))
    split: Mapped[Split] = mapped_column(_enum(Split, "split"))
    copies: Mapped[int] = mapped_column(default=1)


class Threshold(Base):
    """Per-model, per-label threshold: a verdict is confirmed at or above it."""

    __tablename__ = "thresholds"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"))
    classification_id: Mapped[int] = mapped_column(sa.ForeignKey("classifications.id"))
    threshold: Mapped[float] = mapped_column()
    method: Mapped[str] = mapped_column(sa.String(32), default="max_f1")  # or "manual"
    set_by: Mapped[str] = mapped_column(sa.String(128), default="")
    set_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        sa.UniqueConstraint("model_id", "classification_id", name="uq_thresholds_model_label"),
        sa.CheckConstraint("threshold >= 0 AND threshold <= 1", name="range"),
    )


class ModelEvaluation(Base):
    """A held-out image's weights under a model (the enhanced confusion matrix's points)."""

    __tablename__ = "model_evaluations"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("models.id", ondelete="CASCADE"), index=True
    )
    plot_id: Mapped[int] = mapped_column(sa.ForeignKey("plots.id", ondelete="CASCADE"))
    true_classification_id: Mapped[int] = mapped_column(sa.ForeignKey("classifications.id"))
    predicted_classification_id: Mapped[int] = mapped_column(sa.ForeignKey("classifications.id"))
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    split: Mapped[Split] = mapped_column(_enum(Split, "split"), default=Split.TEST)
    __table_args__ = (sa.UniqueConstraint("model_id", "plot_id", name="uq_evaluations_model_plot"),)


class TrainingReport(Base):
    """An image where the model and the humans disagree, to be reviewed."""

    __tablename__ = "training_reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("models.id", ondelete="CASCADE"), index=True
    )
    plot_id: Mapped[int] = mapped_column(sa.ForeignKey("plots.id", ondelete="CASCADE"))
    human_classification_id: Mapped[int] = mapped_column(sa.ForeignKey("classifications.id"))
    model_classification_id: Mapped[int] = mapped_column(sa.ForeignKey("classifications.id"))
    model_weight: Mapped[float] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingReportResponse(Base):
    """What an expert decided about a training-report entry."""

    __tablename__ = "training_report_responses"
    id: Mapped[int] = mapped_column(primary_key=True)
    training_report_id: Mapped[int] = mapped_column(
        sa.ForeignKey("training_reports.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), default=None)
    response: Mapped[str] = mapped_column(sa.String(32))  # relabelled / model_wrong / dismissed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRun(Base):
    """A training request (local process or Kubernetes Job) and its progress."""

    __tablename__ = "training_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id"), index=True)
    architecture: Mapped[str] = mapped_column(sa.String(64), default="small")
    sampling_method: Mapped[str] = mapped_column(sa.String(32), default="normal")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[TrainingRunStatus] = mapped_column(
        _enum(TrainingRunStatus, "training_run_status"), default=TrainingRunStatus.QUEUED
    )
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(LongText, default="")
    job_name: Mapped[str | None] = mapped_column(sa.String(128), default=None)
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("models.id"), default=None)
    requested_by: Mapped[str] = mapped_column(sa.String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- inference records -------------------------------------------------------------------


class RunHistory(Base):
    """Every inference Hydra made: all weights, the thresholds used, the verdict."""

    __tablename__ = "run_history"
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    order_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id"))
    run_period: Mapped[str] = mapped_column(sa.String(64), default="")
    run_number: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    chunk: Mapped[int] = mapped_column(default=-1)
    status: Mapped[InferenceStatus] = mapped_column(_enum(InferenceStatus, "inference_status"))
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("models.id"), default=None)
    verdict: Mapped[str] = mapped_column(sa.String(32))
    confidence: Mapped[float] = mapped_column(default=0.0)
    confirmed: Mapped[bool] = mapped_column(default=False)
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stage_seconds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(sa.String(1024), default="")
    source_path: Mapped[str] = mapped_column(sa.String(1024), default="")
    plot_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plots.id"), default=None)
    predictor_id: Mapped[str] = mapped_column(sa.String(128), default="")
    file_time: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        sa.Index("ix_run_history_type_time", "plot_type_id", "created_at"),
        sa.Index("ix_run_history_run", "run_number"),
        sa.Index("ix_run_history_created", "created_at"),
    )


class RunTime(Base):
    """The latest inference per plot type: what the Run page shows."""

    __tablename__ = "run_time"
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id"), primary_key=True)
    run_history_id: Mapped[int] = mapped_column(sa.ForeignKey("run_history.id"))
    order_id: Mapped[str] = mapped_column(sa.String(36))
    run_period: Mapped[str] = mapped_column(sa.String(64), default="")
    run_number: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    chunk: Mapped[int] = mapped_column(default=-1)
    verdict: Mapped[str] = mapped_column(sa.String(32))
    confidence: Mapped[float] = mapped_column(default=0.0)
    confirmed: Mapped[bool] = mapped_column(default=False)
    model_id: Mapped[int | None] = mapped_column(sa.ForeignKey("models.id"), default=None)
    image_path: Mapped[str] = mapped_column(sa.String(512), default="")
    heatmap_path: Mapped[str | None] = mapped_column(sa.String(512), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonitoringLog(Base):
    """Unconfirmed and confirmed-alarm verdicts, with transitions marked, and the alarms'
    raise / acknowledge / clear (``event``; an acknowledgement has no inference)."""

    __tablename__ = "monitoring_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_history_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("run_history.id"), unique=True, default=None
    )
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id"))
    run_number: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    chunk: Mapped[int] = mapped_column(default=-1)
    verdict: Mapped[str] = mapped_column(sa.String(32))
    confirmed: Mapped[bool] = mapped_column(default=False)
    transition: Mapped[bool] = mapped_column(default=False)
    transition_kind: Mapped[str] = mapped_column(sa.String(32), default="")
    alarm: Mapped[bool] = mapped_column(default=False)
    event: Mapped[str] = mapped_column(sa.String(16), default="", server_default="")
    actor: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        sa.Index("ix_monitoring_log_created", "created_at"),
        # The Log page: entries per plot type in a window, and a detector's page.
        sa.Index("ix_monitoring_log_type_created", "plot_type_id", "created_at"),
        # ... and its transitions only (a few in a hundred entries).
        sa.Index("ix_monitoring_log_transition", "transition", "created_at", "plot_type_id"),
    )


class AlarmState(Base):
    """A plot type's alarm: its recent alarm verdicts (the K-of-N window), whether it is
    raised or acknowledged, and when it last beeped (written by the keeper; the API
    acknowledges)."""

    __tablename__ = "alarm_states"
    plot_type_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plot_types.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(sa.String(16), default="clear")
    recent: Mapped[list[Any]] = mapped_column(default=list)
    last_order_id: Mapped[str] = mapped_column(sa.String(36), default="")
    run_number: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    raised_at: Mapped[datetime | None] = mapped_column(default=None)
    raised_order_id: Mapped[str] = mapped_column(sa.String(36), default="")
    last_beep_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str] = mapped_column(sa.String(64), default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BeamState(Base):
    """The live beam and run state read from EPICS by the keeper's beam watcher (one row)."""

    __tablename__ = "beam_state"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(sa.String(16), default="epics")
    connected: Mapped[bool] = mapped_column(default=False)
    beam_current: Mapped[float | None] = mapped_column(default=None)
    run_number: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    run_type: Mapped[str] = mapped_column(sa.String(64), default="")
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    written_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelDrift(Base):
    """A plot type's drift, as the keeper's drift loop last measured it: the active model's
    top weights and verdict mix over a trailing window against its test split (PSI), and
    its agreement with the labels experts gave the window's images."""

    __tablename__ = "model_drift"
    plot_type_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plot_types.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("models.id", ondelete="SET NULL"), default=None
    )
    window_hours: Mapped[float] = mapped_column(default=24.0)
    inferences: Mapped[int] = mapped_column(default=0)
    test_images: Mapped[int] = mapped_column(default=0)
    psi_top_weight: Mapped[float | None] = mapped_column(default=None)
    psi_verdicts: Mapped[float | None] = mapped_column(default=None)
    drift_score: Mapped[float | None] = mapped_column(default=None)
    labelled: Mapped[int] = mapped_column(default=0)
    label_agreement: Mapped[float | None] = mapped_column(default=None)
    retrain_suggested: Mapped[bool] = mapped_column(default=False)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class StageHourly(Base):
    """Stage-time histograms per hour and run, kept by the keeper at every commit: what the
    Status page draws from (``hydra_common.stagestats``)."""

    __tablename__ = "stage_hourly"
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    run_number: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    stage: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    bin: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    seconds_sum: Mapped[float] = mapped_column(default=0.0)


class RunVerdictCount(Base):
    """How many inferences of a run got a verdict, kept by the keeper at every commit and
    by retention as it deletes: always ``run_history`` counted per run and verdict (a row
    whose count reaches 0 is deleted). The Summary page's figures read it, not the history."""

    __tablename__ = "run_verdicts"
    run_number: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    verdict: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class ModelShadow(Base):
    """A trained model in shadow beside its plot type's active model (one per plot type):
    the predictor runs it on the same batches and the keeper records its verdicts in
    ``shadow_history``; it changes no verdict, alarm or kept image. The optional rule
    (``min_images``, ``min_agreement`` with the active model) gates its promotion."""

    __tablename__ = "model_shadows"
    plot_type_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plot_types.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[int] = mapped_column(
        sa.ForeignKey("models.id", ondelete="CASCADE"), unique=True
    )
    started_by: Mapped[str] = mapped_column(sa.String(128), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    min_images: Mapped[int | None] = mapped_column(default=None)
    min_agreement: Mapped[float | None] = mapped_column(default=None)


class ShadowHistory(Base):
    """A shadow model's verdict on one image, beside the active model's (``agrees`` is None
    when either failed); disagreements keep the image (``image_path``) for the Library."""

    __tablename__ = "shadow_history"
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    order_id: Mapped[str] = mapped_column(sa.String(36))
    model_id: Mapped[int] = mapped_column(sa.ForeignKey("models.id", ondelete="CASCADE"))
    plot_type_id: Mapped[int] = mapped_column(sa.ForeignKey("plot_types.id", ondelete="CASCADE"))
    active_model_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("models.id", ondelete="SET NULL"), default=None
    )
    run_number: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    chunk: Mapped[int] = mapped_column(default=-1)
    ok: Mapped[bool] = mapped_column(default=True)
    verdict: Mapped[str] = mapped_column(sa.String(32), default="")
    confidence: Mapped[float] = mapped_column(default=0.0)
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active_verdict: Mapped[str] = mapped_column(sa.String(32), default="")
    agrees: Mapped[bool | None] = mapped_column(default=None)
    seconds_per_image: Mapped[float] = mapped_column(default=0.0)
    active_seconds_per_image: Mapped[float] = mapped_column(default=0.0)
    error: Mapped[str] = mapped_column(sa.String(1024), default="")
    image_path: Mapped[str | None] = mapped_column(sa.String(512), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        sa.UniqueConstraint("order_id", "model_id", name="uq_shadow_history_order_model"),
        sa.Index("ix_shadow_history_model_time", "model_id", "created_at"),
    )


class PlotTypeMask(Base):
    """A region of a plot type's image where a known problem is accepted ("dead channel,
    accepted until run N or date D"): image-relative (0..1, origin top left) so it survives
    resolution changes. While in force, a confirmed alarm verdict whose Grad-CAM mass lies
    mostly inside the plot type's masks is recorded ``Accepted`` (``hydra_common.masks``)."""

    __tablename__ = "plot_type_masks"
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_type_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plot_types.id", ondelete="CASCADE"), index=True
    )
    x0: Mapped[float] = mapped_column()
    y0: Mapped[float] = mapped_column()
    x1: Mapped[float] = mapped_column()
    y1: Mapped[float] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(255))
    until_run: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    until_time: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(sa.String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunCondition(Base):
    """Run conditions (beam current, run type) as reported by the hall."""

    __tablename__ = "run_conditions"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_number: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    beam_current: Mapped[float | None] = mapped_column(default=None)
    run_type: Mapped[str] = mapped_column(sa.String(64), default="")
    special: Mapped[bool] = mapped_column(default=False)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ServiceStatus(Base):
    """Heartbeat and figures of each running service instance (the Status page)."""

    __tablename__ = "service_status"
    service: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    instance: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="serving")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class FedFile(Base):
    """The feeder's ledger: what it fed, so a restart neither loses nor repeats an image."""

    __tablename__ = "fed_files"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_path: Mapped[str] = mapped_column(sa.String(768), unique=True)
    file_size: Mapped[int] = mapped_column(sa.BigInteger)
    file_mtime_ns: Mapped[int] = mapped_column(sa.BigInteger)
    order_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)  # or done
    fed_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None, index=True)  # retention


# --- people -----------------------------------------------------------------------------


class User(Base):
    """A person using Hydra; local password (argon2) or single sign-on."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(128), default="")
    password_hash: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.VIEWER)
    active: Mapped[bool] = mapped_column(default=True)
    # Sessions issued before this time are refused (set when the user is disabled).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RevokedSession(Base):
    """A session ended by logging out, refused by every API replica until it expires."""

    __tablename__ = "revoked_sessions"
    nonce: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class UserPermission(Base):
    """A user may label this plot type."""

    __tablename__ = "user_permissions"
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    plot_type_id: Mapped[int] = mapped_column(
        sa.ForeignKey("plot_types.id", ondelete="CASCADE"), primary_key=True
    )


class AuditLog(Base):
    """Every change made through the API: who, when, what before and after."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    entity: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(64), default="")
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class News(Base):
    """A news item shown in the banner on every page."""

    __tablename__ = "news"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(255))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    severity: Mapped[str] = mapped_column(sa.String(16), default="info")
    author: Mapped[str] = mapped_column(sa.String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
