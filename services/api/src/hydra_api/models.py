"""Request and response models of the REST API (the OpenAPI schema the front end uses)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hydra_api.inputs import Input, PlainText, RunNumber, StoredId, UtcDatetime
from hydra_common.db.schema import ModelStatus, Role, TrainingRunStatus
from hydra_common.labels import COLOR_PATTERN, MAX_DESCRIPTION, NAME_PATTERN

# The names a training run may ask for; a test checks they equal hydra_common.training's
# lists (Literal types make them enums in the OpenAPI schema and the TypeScript client).
Architecture = Literal["inceptionv3", "inceptionv3-cbam", "small"]
Sampling = Literal["normal", "undersample", "oversample"]
Init = Literal["imagenet", "random"]

T = TypeVar("T")

MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """One page of a list: ``next`` is the offset of the following page (None at the end)."""

    items: list[T]
    total: int | None = None
    next: int | None = None


class Detail(BaseModel):
    """A short message (errors, acknowledgements)."""

    detail: str


class ValidationIssue(BaseModel):
    """One problem FastAPI found in a request (where, what)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """Invalid input: a message from Hydra, or FastAPI's list of validation issues."""

    detail: str | list[ValidationIssue]


# Error answers any route may give, documented on every route (the body is always
# ``{"detail": ...}``; see main._add_error_handlers).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Detail, "description": "Not logged in."},
    403: {"model": Detail, "description": "Not allowed (role, plot-type permission, CSRF)."},
    404: {"model": Detail, "description": "No such thing."},
    409: {"model": Detail, "description": "Conflicts with the current state."},
    422: {"model": Problem, "description": "Invalid input."},
}


class Health(BaseModel):
    """The API is up and reaches its database."""

    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"


# --- live views -------------------------------------------------------------------------


class RuntimeItem(BaseModel):
    """The latest verdict of one plot type (a Run-page card)."""

    plot_type: str
    plot_type_id: int
    detector: str
    order_id: str
    run_period: str
    run_number: int
    chunk: int
    verdict: str
    classified: bool = Field(
        description=(
            "False for the verdicts no model gives (NoModel: no model; Error: the inference"
            " failed): neither a confidence nor 'unconfirmed' applies to them."
        )
    )
    confidence: float
    confirmed: bool
    model_id: int | None
    time: datetime
    image_url: str | None
    heatmap_url: str | None
    stale: bool = Field(description="No update for longer than HYDRA_STALE_MINUTES.")
    color: str


class InferenceItem(RuntimeItem):
    """One inference from run_history (``stale`` is always false for history)."""

    id: int
    status: str
    weights: dict[str, float]
    thresholds: dict[str, float]
    error: str


class LogEntry(BaseModel):
    """An unconfirmed or confirmed-alarm verdict from the monitoring log."""

    id: int
    plot_type: str
    detector: str
    run_number: int
    chunk: int
    verdict: str
    confirmed: bool
    transition: bool
    transition_kind: str
    alarm: bool
    event: str = Field("", description="An alarm's `raise`, `acknowledge` or `clear`; empty.")
    actor: str = Field("", description="Who acknowledged (an `acknowledge` event).")
    time: datetime
    color: str


class LogGroup(BaseModel):
    """Log entries of one detector."""

    detector: str
    entries: list[LogEntry]


class LogPage(BaseModel):
    """One page of the log, grouped by detector."""

    groups: list[LogGroup]
    total: int
    next: int | None = None


# --- plot types and labels -------------------------------------------------------------


class ClassificationOut(BaseModel):
    """A label of the hall's set, its colour and flags."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    color: str
    description: str
    trainable: bool
    alarm: bool


class ClassificationIn(Input):
    """A new label: a letter, then letters, digits, _ or -; unique ignoring case, _ and -."""

    name: str = Field(pattern=NAME_PATTERN, max_length=32)
    color: str | None = Field(
        None, pattern=COLOR_PATTERN, description="#RRGGBB; absent: a colour no label has."
    )
    description: str = Field("", max_length=MAX_DESCRIPTION)
    trainable: bool = Field(True, description="False: never trained on (like Ignore).")
    alarm: bool = Field(False, description="Raises alarms and gets heat maps (like Bad).")


class ClassificationUpdate(Input):
    """Changes to a label, for every plot type (absent = unchanged; names never change)."""

    color: str | None = Field(None, pattern=COLOR_PATTERN)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    trainable: bool | None = None
    alarm: bool | None = None


class PlotTypeLabelsIn(Input):
    """The plot type's valid labels (existing labels; replaces the previous set)."""

    labels: list[Annotated[str, Field(max_length=32)]] = Field(min_length=1, max_length=200)


class PlotTypeOut(BaseModel):
    """A plot type with its valid labels and counts of kept and labelled images."""

    id: int
    name: str
    detector: str
    file_type: str
    chunked: bool
    collect_percent: float
    ignored: bool
    point_of_contact: str
    description: str
    active_model_id: int | None
    labels: list[str]
    plots_kept: int
    plots_labelled: int
    default_architecture: str | None = Field(
        description="Training default of this plot type; null: Hydra's."
    )
    default_sampling: str | None = Field(
        description="Training default of this plot type; null: Hydra's."
    )


class PlotTypeUpdate(Input):
    """Fields an admin may change on a plot type (absent = unchanged).

    ``default_architecture`` and ``default_sampling`` may be set to null: Hydra's defaults."""

    collect_percent: float | None = Field(None, ge=0, le=100)
    ignored: bool | None = None
    detector: str | None = Field(None, max_length=64)
    default_architecture: Architecture | None = None
    default_sampling: Sampling | None = None


class PlotOut(BaseModel):
    """An image kept for labelling and its current label."""

    id: int
    plot_type: str
    plot_type_id: int
    run_period: str
    run_number: int
    chunk: int
    image_url: str
    heatmap_url: str | None
    kept_reason: str
    created_at: datetime
    file_time: datetime | None
    label: str | None
    labelled_by: str | None
    labelled_at: datetime | None
    margin: float | None = Field(
        None,
        description="The model's top weight minus the runner-up's (uncertainty order only).",
    )


class LabelIn(Input):
    """Give a plot a label."""

    plot_id: StoredId
    label: str = Field(max_length=32)


class LabelResult(BaseModel):
    """What a batch of labels changed."""

    changed: int
    unchanged: int


class LabelCount(BaseModel):
    """How many plots carry a label."""

    label: str
    color: str
    count: int


class LabelCounts(BaseModel):
    """Label counts of one plot type."""

    plot_type: str
    total_plots: int
    unlabelled: int
    counts: list[LabelCount]


class LeaderboardEntry(BaseModel):
    """How many label changes a user made."""

    username: str
    display_name: str
    labels: int
    last_at: datetime | None


# --- models ------------------------------------------------------------------------------


class ThresholdOut(BaseModel):
    """A label's threshold under a model."""

    label: str
    threshold: float
    method: str
    set_by: str
    set_at: datetime


class ThresholdIn(Input):
    """A new threshold value."""

    value: float = Field(ge=0, le=1)


class ModelOut(BaseModel):
    """A model of a plot type."""

    id: int
    plot_type: str
    plot_type_id: int
    name: str
    version: int
    architecture: str
    status: ModelStatus
    active: bool
    sampling_method: str
    epochs_run: int
    trained_by: str
    signed_off_by: str | None
    created_at: datetime
    promoted_at: datetime | None
    metrics: dict[str, Any]


class TrainingSetOut(BaseModel):
    """The images a model learnt from."""

    id: int
    sampling_method: str
    size: int
    class_counts: dict[str, Any]
    dropped_classes: dict[str, Any]
    created_by: str
    created_at: datetime


class ModelDetail(ModelOut):
    """A model with its training set, labels and thresholds."""

    label_order: list[str]
    hyperparameters: dict[str, Any]
    framework_versions: dict[str, Any]
    parent_model_id: int | None
    location: str
    input_height: int
    input_width: int
    input_channels: int
    training_set: TrainingSetOut | None
    thresholds: list[ThresholdOut]


class ConfusionCell(BaseModel):
    """Images of one true label the model called one predicted label, and how sure it was."""

    true_label: str
    predicted_label: str
    count: int
    histogram: list[int] = Field(
        description="Counts of the predicted label's weight in 20 equal bins over [0, 1]."
    )


class ConfusionMatrix(BaseModel):
    """The enhanced confusion matrix of a model on its held-out images."""

    model_id: int
    split: str
    labels: list[str]
    bin_edges: list[float]
    total: int
    cells: list[ConfusionCell]


class ReportResponseOut(BaseModel):
    """What an expert said about a disagreement."""

    response: str
    username: str | None
    created_at: datetime


class ReportEntry(BaseModel):
    """An image where the model and the humans disagree."""

    id: int
    plot_id: int
    run_number: int
    chunk: int
    image_url: str
    heatmap_url: str | None
    human_label: str
    model_label: str
    model_weight: float
    current_label: str | None
    responses: list[ReportResponseOut]


class ReportResponseIn(Input):
    """An expert's decision about a disagreement."""

    response: Literal["relabelled", "model_wrong", "dismissed"]


# --- training ----------------------------------------------------------------------------


class TrainingRunIn(Input):
    """Ask for a new model of a plot type; what is left out comes from the plot type's
    defaults, then Hydra's (see ``GET /api/training-options``)."""

    plot_type: str = Field(max_length=128)
    architecture: Architecture | None = None
    sampling: Sampling | None = None
    epochs: int | None = Field(
        None, ge=1, le=1000, description="Most epochs; absent: the trainer's HYDRA_TRAIN_EPOCHS."
    )
    init: Init | None = Field(
        None, description="Start from ImageNet weights or at random; absent: per architecture."
    )


class TrainingOptions(BaseModel):
    """What a training run may ask for, and Hydra's defaults."""

    architectures: list[str]
    sampling_methods: list[str]
    inits: list[str]
    default_architecture: str
    default_sampling: str
    default_init: dict[str, str] = Field(description="Architecture -> its default init.")


class TrainingRunOut(BaseModel):
    """A training run and its progress."""

    id: int
    plot_type: str
    plot_type_id: int
    architecture: str
    sampling_method: str
    options: dict[str, Any]
    status: TrainingRunStatus
    progress: float
    message: str
    job_name: str | None
    model_id: int | None
    requested_by: str
    created_at: datetime
    updated_at: datetime


# --- status, news, summary, run conditions ----------------------------------------------


class ServiceStatusOut(BaseModel):
    """A service instance's last heartbeat, or what its ``/metrics`` said just now."""

    service: str
    instance: str
    state: str = Field(description="`serving`, `unreachable`, or what the service reported.")
    details: dict[str, Any] = Field(
        description="Its figures: `queue_depth`, `inflight_orders`, `orders_pending`, ..."
    )
    last_seen: datetime | None = Field(description="Last heartbeat or answer; null if never.")
    alive: bool


class StageDistribution(BaseModel):
    """How long one processing stage took over the window."""

    stage: str
    bin_edges: list[float]
    counts: list[int]
    count: int
    mean: float
    p50: float
    p95: float


class RunAverage(BaseModel):
    """Mean stage times of the inferences of one run."""

    run_number: int
    inferences: int
    mean_seconds: dict[str, float]


class ThroughputPoint(BaseModel):
    """Inferences recorded in one hour."""

    hour: datetime
    count: int


class StatusOut(BaseModel):
    """The Status page."""

    since: datetime
    services: list[ServiceStatusOut]
    stages: list[StageDistribution]
    runs: list[RunAverage]
    throughput: list[ThroughputPoint]
    sampled: int = Field(description="Inferences the distributions are drawn from.")


class NewsOut(BaseModel):
    """A news item."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    body: str
    severity: str
    author: str
    created_at: datetime
    expires_at: datetime | None


class NewsIn(Input):
    """A new news item."""

    title: PlainText = Field(min_length=1, max_length=255, description="Plain text.")
    body: PlainText = Field("", max_length=20_000, description="Plain text (markup removed).")
    severity: Literal["info", "warning", "critical"] = "info"
    expires_at: UtcDatetime | None = Field(None, description="A time without a zone is UTC.")


class NewsUpdate(Input):
    """Changes to a news item (absent = unchanged; ``expires_at: null`` = never expires)."""

    title: PlainText | None = Field(None, min_length=1, max_length=255)
    body: PlainText | None = Field(None, max_length=20_000)
    severity: Literal["info", "warning", "critical"] | None = None
    expires_at: UtcDatetime | None = Field(None, description="A time without a zone is UTC.")


class SummaryOut(BaseModel):
    """The deployment's figures."""

    hall: str
    labelled_images: int
    plot_types: int
    active_models: int
    runs_with_bad: int
    total_analysed: int


class RunConditionIn(Input):
    """Run conditions reported by the hall."""

    run_number: RunNumber
    beam_current: float | None = None
    run_type: str = Field("", max_length=64)
    special: bool = False


class RunConditionOut(RunConditionIn):
    """Recorded run conditions."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    recorded_at: datetime


# --- users and auth ----------------------------------------------------------------------

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


class UserOut(BaseModel):
    """A user, their role and the plot types they may label."""

    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    has_password: bool
    created_at: datetime
    permissions: list[str]


class Me(UserOut):
    """The logged-in user and the CSRF token to send as ``X-CSRF-Token``."""

    csrf_token: str


class LoginIn(Input):
    """Credentials."""

    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserCreate(Input):
    """A new local user."""

    username: str = Field(pattern=USERNAME_PATTERN)
    display_name: str = Field("", max_length=128)
    role: Role = Role.VIEWER
    password: str | None = Field(None, min_length=8, max_length=1024)


class UserUpdate(Input):
    """Changes to a user (absent = unchanged)."""

    display_name: str | None = Field(None, max_length=128)
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(None, min_length=8, max_length=1024)


class PermissionsIn(Input):
    """The plot types a user may label (replaces the previous set)."""

    plot_types: list[Annotated[str, Field(max_length=128)]] = Field(max_length=5000)


class AuditEntry(BaseModel):
    """One recorded change."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any]
    after: dict[str, Any]
    at: datetime


class AuditPage(BaseModel):
    """A page of the audit log, newest first; ``next_before_id`` asks for the next (None at
    the end)."""

    items: list[AuditEntry]
    next_before_id: int | None = None


class ShadowIn(Input):
    """Put a model in shadow, with an optional promotion rule (both parts optional)."""

    min_images: int | None = Field(
        None, ge=1, le=100_000_000, description="Images compared in shadow before promotion."
    )
    min_agreement: float | None = Field(
        None, ge=0, le=1, description="Least agreement with the active model for promotion."
    )


class ShadowDisagreement(BaseModel):
    """An image where the shadow and the active model gave different verdicts."""

    order_id: str
    run_number: int
    chunk: int
    shadow_verdict: str
    shadow_confidence: float
    active_verdict: str
    human_label: str | None
    image_url: str | None
    created_at: datetime


class ShadowOut(BaseModel):
    """A model's shadow evaluation: whether it runs in shadow, its rule, and its figures over
    every image it saw in shadow (agreements are fractions; ``None`` until there is data)."""

    model_id: int
    plot_type: str
    active_model_id: int | None
    in_shadow: bool
    started_by: str | None
    started_at: datetime | None
    min_images: int | None
    min_agreement: float | None
    images: int
    errors: int
    compared: int
    agreements: int
    agreement: float | None
    labelled: int
    label_agreement: float | None
    active_label_agreement: float | None
    seconds_per_image: float | None
    active_seconds_per_image: float | None
    first_at: datetime | None
    last_at: datetime | None
    promotable: bool
    rule_problem: str
    disagreements: list[ShadowDisagreement]
