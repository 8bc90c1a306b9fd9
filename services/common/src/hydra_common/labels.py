"""A hall's labels (the ``classifications`` table): the one home of their rules.

Labels are data, not code: a hall adds its own (``Glitch``, ``BeamOff``...) from the
command line (``hydra label add``, ``hydra plot-type add --labels``) or the web page, and
the API and the trainer both call these functions, so both apply the same rules:

- A name is 1 to 32 characters: a letter, then letters, digits, ``_`` or ``-`` (it becomes
  a folder name in ``hydra import`` trees, a path segment of the threshold URLs and a key
  of every model's outputs, so no spaces, dots or slashes).
- Names are unique ignoring case, ``_`` and ``-`` (``HotChannel``, ``hot_channel`` and
  ``Hot-Channel`` are one label, as ``hydra import`` matches folder names that way).
  ``NoModel`` and ``Error`` are reserved: they are the verdicts no model gives (a plot type
  without a model, a failed inference), spelled here once for the keeper and the API.
- A colour is ``#RRGGBB`` (stored in lower case); without one a new label gets the first
  colour of ``PALETTE`` no label has yet.
- ``alarm`` labels raise alarms and get heat maps (keeper, predictor, Run page);
  ``trainable`` false (like ``Ignore``) keeps a label's images out of training sets.
- A label is never renamed or deleted: models name their outputs by label name and the
  label history refers to it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.schema import Classification, Label, PlotType, PlotTypeClassification
from hydra_common.errors import Conflict, InvalidInput, NotFound

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
MAX_DESCRIPTION = 255
# The verdicts no model gives: a plot type without a model, and an inference that failed.
NO_MODEL = "NoModel"
ERROR = "Error"
SENTINEL_VERDICTS = (NO_MODEL, ERROR)
RESERVED = frozenset(v.lower() for v in SENTINEL_VERDICTS)
# Distinct colours for new labels, none too close to the shared set's own.
PALETTE = (
    "#17becf",
    "#e377c2",
    "#bcbd22",
    "#1f77b4",
    "#8c564b",
    "#2ca02c",
    "#ff9896",
    "#9467bd",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#c5b0d5",
)
_NAME = re.compile(NAME_PATTERN)
_COLOR = re.compile(COLOR_PATTERN)


def key(name: str) -> str:
    """What makes two label names the same: case, ``_`` and ``-`` (and spaces) ignored."""
    return re.sub(r"[\s_-]", "", name).lower()


def check_name(name: str) -> str:
    """The name, stripped, when it is a valid label name; InvalidInput otherwise."""
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid label name {name!r}: 1 to 32 characters, a letter first, then letters, "
            "digits, _ or -"
        )
    if key(name) in RESERVED:
        raise InvalidInput(
            f"{name!r} is reserved (the verdict of a plot type without a model, or of a "
            "failed inference)"
        )
    return name


def check_color(color: str) -> str:
    """The colour in lower case when it is ``#RRGGBB``; InvalidInput otherwise."""
    color = color.strip()
    if not _COLOR.fullmatch(color):
        raise InvalidInput(f"invalid colour {color!r}: use #RRGGBB, e.g. #17becf")
    return color.lower()


def _check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"a description has at most {MAX_DESCRIPTION} characters")
    return description


async def list_labels(session: AsyncSession) -> list[Classification]:
    """Every label, oldest first (the shared set, then the hall's own)."""
    return list(await session.scalars(sa.select(Classification).order_by(Classification.id)))


async def _by_key(session: AsyncSession) -> dict[str, Classification]:
    return {key(c.name): c for c in await list_labels(session)}


async def get_label(session: AsyncSession, ref: int | str) -> Classification:
    """A label by id, or by name (matched as ``key`` does); NotFound when there is none."""
    if isinstance(ref, int):
        found = await session.get(Classification, ref)
    else:
        found = (await _by_key(session)).get(key(ref))
    if found is None:
        raise NotFound(f"no label {ref!r}")
    return found


def _next_color(used: Iterable[str]) -> str:
    taken = {c.lower() for c in used}
    free = [c for c in PALETTE if c not in taken]
    return free[0] if free else PALETTE[len(taken) % len(PALETTE)]


async def create_label(
    session: AsyncSession,
    name: str,
    *,
    color: str | None = None,
    description: str = "",
    trainable: bool = True,
    alarm: bool = False,
) -> Classification:
    """Add a label to the hall's set; Conflict when one of the same name (see ``key``) exists."""
    name = check_name(name)
    existing = await _by_key(session)
    if (same := existing.get(key(name))) is not None:
        raise Conflict(f"label {name!r} already exists as {same.name!r}")
    label = Classification(
        name=name,
        color=check_color(color) if color else _next_color(c.color for c in existing.values()),
        description=_check_description(description),
        trainable=trainable,
        alarm=alarm,
    )
    session.add(label)
    try:
        await session.flush()
    except IntegrityError as exc:  # created by someone else since we looked
        raise Conflict(f"label {name!r} already exists") from exc
    return label


async def update_label(
    session: AsyncSession,
    ref: int | str,
    *,
    color: str | None = None,
    description: str | None = None,
    trainable: bool | None = None,
    alarm: bool | None = None,
) -> tuple[Classification, dict[str, object], dict[str, object]]:
    """Change a label's colour, description or flags (None: unchanged).

    Returns the label and its changed fields before and after (for the audit log)."""
    label = await get_label(session, ref)
    wanted: dict[str, object] = {}
    if color is not None:
        wanted["color"] = check_color(color)
    if description is not None:
        wanted["description"] = _check_description(description)
    if trainable is not None:
        wanted["trainable"] = trainable
    if alarm is not None:
        wanted["alarm"] = alarm
    before = {k: getattr(label, k) for k in wanted}
    for k, v in wanted.items():
        setattr(label, k, v)
    await session.flush()
    return label, before, wanted


@dataclass
class Ensured:
    """The labels asked for (in order, existing names as stored) and those just created."""

    labels: list[Classification] = field(default_factory=list)
    created: list[Classification] = field(default_factory=list)


async def ensure_labels(
    session: AsyncSession,
    names: Sequence[str],
    *,
    alarm: Collection[str] = (),
    untrainable: Collection[str] = (),
    colors: Mapping[str, str] | None = None,
) -> Ensured:
    """The labels called ``names``, creating the ones the hall has not seen.

    ``alarm``, ``untrainable`` and ``colors`` say how to create new ones; naming an existing
    label there is refused when it would change it (that is ``update_label``'s job, for
    every plot type at once)."""
    colors = {key(k): v for k, v in (colors or {}).items()}
    alarm_keys = {key(n) for n in alarm}
    untrainable_keys = {key(n) for n in untrainable}
    wanted = list(dict.fromkeys(check_name(n) for n in names))
    if not wanted:
        raise InvalidInput("give at least one label")
    strays = (alarm_keys | untrainable_keys | set(colors)) - {key(n) for n in wanted}
    if strays:
        raise InvalidInput(f"options name labels that are not listed: {', '.join(sorted(strays))}")
    result = Ensured()
    seen: set[int] = set()
    for name in wanted:
        k = key(name)
        label = (await _by_key(session)).get(k)
        if label is None:
            label = await create_label(
                session,
                name,
                color=colors.get(k),
                trainable=k not in untrainable_keys,
                alarm=k in alarm_keys,
            )
            result.created.append(label)
        else:
            _refuse_changes(label, k in alarm_keys, k in untrainable_keys, colors.get(k))
        if label.id not in seen:
            seen.add(label.id)
            result.labels.append(label)
    return result


def _refuse_changes(
    label: Classification, alarm: bool, untrainable: bool, color: str | None
) -> None:
    problems = []
    if alarm and not label.alarm:
        problems.append("--alarm")
    if untrainable and label.trainable:
        problems.append("--untrainable")
    if color is not None and check_color(color) != label.color.lower():
        problems.append("--color")
    if problems:
        raise InvalidInput(
            f"label {label.name} exists; change it for every plot type with "
            f"`hydra label set {label.name} {' '.join(problems)}` (or on the Labels page)"
        )


async def plot_type_labels(session: AsyncSession, plot_type_id: int) -> list[Classification]:
    """The labels valid for a plot type, oldest first."""
    rows = await session.scalars(
        sa.select(Classification)
        .join(PlotTypeClassification, PlotTypeClassification.classification_id == Classification.id)
        .where(PlotTypeClassification.plot_type_id == plot_type_id)
        .order_by(Classification.id)
    )
    return list(rows)


@dataclass
class LabelChange:
    """What setting a plot type's labels did (names)."""

    added: list[str]
    removed: list[str]


async def set_plot_type_labels(
    session: AsyncSession, plot_type: PlotType, names: Sequence[str]
) -> LabelChange:
    """Make ``names`` (existing labels) the plot type's valid labels.

    A label images of the plot type are labelled with cannot be removed (Conflict): relabel
    them first. Labels that do not exist are refused (create them first)."""
    if not names:
        raise InvalidInput("a plot type needs at least one label")
    known = await _by_key(session)
    unknown = [n for n in names if key(n) not in known]
    if unknown:
        raise InvalidInput(f"unknown labels {', '.join(unknown)}; create them first")
    target = {known[key(n)].id: known[key(n)] for n in names}
    current = {c.id: c for c in await plot_type_labels(session, plot_type.id)}
    gone = [cid for cid in current if cid not in target]
    if gone:
        used = (
            await session.execute(
                sa.select(Label.classification_id, sa.func.count())
                .where(Label.plot_type_id == plot_type.id, Label.classification_id.in_(gone))
                .group_by(Label.classification_id)
            )
        ).tuples()
        in_use = [f"{current[cid].name} ({n} image{'s' * (n != 1)})" for cid, n in used]
        if in_use:
            raise Conflict(
                f"cannot remove labels that images of {plot_type.name} carry: "
                f"{', '.join(in_use)}; relabel those images first"
            )
        await session.execute(
            sa.delete(PlotTypeClassification).where(
                PlotTypeClassification.plot_type_id == plot_type.id,
                PlotTypeClassification.classification_id.in_(gone),
            )
        )
    added = [c for cid, c in target.items() if cid not in current]
    session.add_all(
        PlotTypeClassification(plot_type_id=plot_type.id, classification_id=c.id) for c in added
    )
    await session.flush()
    await session.refresh(plot_type, ["valid_classifications"])
    return LabelChange(added=[c.name for c in added], removed=[current[cid].name for cid in gone])
