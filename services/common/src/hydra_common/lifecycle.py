"""The model life cycle: promotion, rollback, candidates, retirement and thresholds.

The one home of these rules; the API's routers and the trainer's ``hydra promote`` /
``hydra rollback`` call them, and the model-config writer asks them which versions the
model server must hold.

- **Promote**: a ``trained`` or ``retired`` model becomes its plot type's active model; the
  previous active model becomes ``retired``. The plot type's row is locked first, so two
  promotions of one plot type run one after the other.
- **Rollback**: back to the previously active model: the current model's parent if it was
  active before, else the retired model promoted most recently.
- **Candidates**: the newest ``trained`` models of a plot type that are newer than its active
  model (at most ``CANDIDATES_PER_PLOT_TYPE``): the model server holds them beside the active
  one, so promoting one serves at once. A rule, not a flag: training a model makes it a
  candidate, promoting or retiring it (or a newer promotion) ends that.
- **Retire**: a trained or active model stops serving (retiring the active one leaves the
  plot type without a model).
- **Thresholds**: set by hand with method ``manual`` and who set it.
- **Shadow**: a trained (or retired) model runs beside its plot type's active model on the
  live stream, one per plot type, without touching verdicts, alarms or kept images; the
  model server holds it. Its optional rule (at least ``min_images`` images compared and an
  agreement with the active model of at least ``min_agreement``) must hold for it to be
  promoted; promoting or retiring it ends the shadow.

Every change writes an ``audit_log`` row naming who made it, in the caller's transaction;
the caller commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common import shadow as shadow_figures
from hydra_common.db.schema import (
    AuditLog,
    Classification,
    Model,
    ModelShadow,
    ModelStatus,
    PlotType,
    Threshold,
    utcnow,
)
from hydra_common.errors import Conflict, InvalidInput, NotFound

PROMOTABLE = frozenset({ModelStatus.TRAINED, ModelStatus.RETIRED})
# Each candidate costs model-server memory (GPU memory under TF Serving): a few suffice.
CANDIDATES_PER_PLOT_TYPE = 2


def _audit(
    session: AsyncSession,
    by: str,
    action: str,
    entity: str,
    entity_id: object,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    session.add(
        AuditLog(
            username=by,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=before,
            after=after,
        )
    )


def _who(by: str) -> str:
    if not by.strip():
        raise InvalidInput("a model change must say who makes it")
    return by.strip()


async def get_model(session: AsyncSession, model_id: int) -> Model:
    """The model with this id; NotFound otherwise."""
    model = await session.get(Model, model_id)
    if model is None:
        raise NotFound(f"no model {model_id}")
    return model


async def get_plot_type(session: AsyncSession, plot_type: int | str) -> PlotType:
    """A plot type by id or name; NotFound otherwise."""
    if isinstance(plot_type, int):
        found = await session.get(PlotType, plot_type)
    else:
        found = await session.scalar(sa.select(PlotType).where(PlotType.name == plot_type))
    if found is None:
        raise NotFound(f"no plot type {plot_type!r}")
    return found


async def _lock_plot_type(session: AsyncSession, plot_type_id: int) -> PlotType:
    """The plot type's row, locked for this transaction and re-read (not the cached copy)."""
    pt = await session.get(PlotType, plot_type_id, with_for_update=True, populate_existing=True)
    if pt is None:
        raise NotFound(f"no plot type {plot_type_id}")
    return pt


async def _models_of(session: AsyncSession, plot_type_id: int) -> list[Model]:
    rows = await session.scalars(
        sa.select(Model)
        .where(Model.plot_type_id == plot_type_id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


# --- the rules, on a plot type's models -------------------------------------------------


def previous_active(models: Sequence[Model], active_id: int | None) -> Model | None:
    """The model a rollback returns to: the active model's parent if it served before, else
    the retired model promoted most recently; None when no model served before."""
    by_id = {m.id: m for m in models}
    served = [
        m
        for m in models
        if m.status == ModelStatus.RETIRED and m.promoted_at is not None and m.id != active_id
    ]
    active = by_id.get(active_id) if active_id is not None else None
    if active is not None and active.parent_model_id is not None:
        parent = by_id.get(active.parent_model_id)
        if parent is not None and parent in served:
            return parent
    if not served:
        return None
    return max(served, key=lambda m: (m.promoted_at, m.id))


def candidate_models(models: Sequence[Model], active_id: int | None) -> list[Model]:
    """The newest trained models newer than the active one (at most CANDIDATES_PER_PLOT_TYPE),
    newest first."""
    newer = [
        m
        for m in models
        if m.status == ModelStatus.TRAINED and (active_id is None or m.id > active_id)
    ]
    newer.sort(key=lambda m: m.id, reverse=True)
    return newer[:CANDIDATES_PER_PLOT_TYPE]


# --- the changes ------------------------------------------------------------------------


async def promote(
    session: AsyncSession,
    model_id: int,
    by: str,
    *,
    plot_type_id: int | None = None,
    action: str = "promote",
) -> Model:
    """Make a trained or retired model its plot type's active model; the previous active
    model retires. ``plot_type_id``, when given, must be the model's plot type."""
    who = _who(by)
    model = await get_model(session, model_id)
    if plot_type_id is not None and model.plot_type_id != plot_type_id:
        raise InvalidInput(f"model {model_id} is not a model of plot type {plot_type_id}")
    pt = await _lock_plot_type(session, model.plot_type_id)
    await session.refresh(model)  # its status as of the lock, not as first read
    if pt.active_model_id == model.id:
        raise Conflict(f"model {model_id} is already active")
    if model.status not in PROMOTABLE:
        raise Conflict(
            f"model {model_id} is {model.status.value}; only a trained or retired model serves"
        )
    in_shadow = await _shadow_of_plot_type(session, pt.id)
    if in_shadow is not None and in_shadow.model_id == model.id:
        await check_shadow_rule(session, in_shadow)
        await session.delete(in_shadow)  # it serves now: the shadow is over
    previous_id = pt.active_model_id
    if previous_id is not None:
        previous = await session.get(Model, previous_id)
        if previous is not None:
            previous.status = ModelStatus.RETIRED
    model.status = ModelStatus.ACTIVE
    model.promoted_at = utcnow()
    model.signed_off_by = who
    pt.active_model_id = model.id
    _audit(
        session,
        who,
        action,
        "plot_type",
        pt.id,
        before={"active_model_id": previous_id},
        after={"active_model_id": model.id},
    )
    await session.flush()
    return model


async def rollback_target(session: AsyncSession, plot_type: int | str) -> Model | None:
    """The model a rollback of this plot type would serve (None: nothing to go back to)."""
    pt = await get_plot_type(session, plot_type)
    return previous_active(await _models_of(session, pt.id), pt.active_model_id)


async def rollback(session: AsyncSession, plot_type: int | str, by: str) -> Model:
    """Serve the plot type's previously active model again (see ``previous_active``)."""
    _who(by)
    pt = await get_plot_type(session, plot_type)
    pt = await _lock_plot_type(session, pt.id)
    target = previous_active(await _models_of(session, pt.id), pt.active_model_id)
    if target is None:
        raise Conflict(f"plot type {pt.name!r} has no previously active model to roll back to")
    return await promote(session, target.id, by, action="rollback")


async def retire(session: AsyncSession, model_id: int, by: str) -> Model:
    """Take a trained or active model out of service (an active one leaves its plot type
    without a model)."""
    who = _who(by)
    model = await get_model(session, model_id)
    pt = await _lock_plot_type(session, model.plot_type_id)
    await session.refresh(model)
    if model.status not in (ModelStatus.TRAINED, ModelStatus.ACTIVE):
        raise Conflict(f"model {model_id} is {model.status.value}; it cannot be retired")
    before = model.status.value
    if pt.active_model_id == model.id:
        pt.active_model_id = None
    in_shadow = await _shadow_of_plot_type(session, pt.id)
    if in_shadow is not None and in_shadow.model_id == model.id:
        await session.delete(in_shadow)
    model.status = ModelStatus.RETIRED
    _audit(
        session,
        who,
        "retire",
        "model",
        model.id,
        before={"status": before},
        after={"status": ModelStatus.RETIRED.value},
    )
    await session.flush()
    return model


async def candidates(session: AsyncSession, plot_type: int | str) -> list[Model]:
    """The plot type's candidate models (see ``candidate_models``)."""
    pt = await get_plot_type(session, plot_type)
    return candidate_models(await _models_of(session, pt.id), pt.active_model_id)


async def set_threshold(
    session: AsyncSession, model_id: int, label: str, value: float, by: str
) -> Threshold:
    """Set a label's threshold by hand: method ``manual``, recorded with who set it."""
    who = _who(by)
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(f"a threshold is between 0 and 1, not {value}")
    model = await get_model(session, model_id)
    pt = await get_plot_type(session, model.plot_type_id)
    if label not in (model.label_order or []) and label not in {
        c.name for c in pt.valid_classifications
    }:
        raise InvalidInput(f"{label!r} is not a label of this model")
    cls = await session.scalar(sa.select(Classification).where(Classification.name == label))
    if cls is None:
        raise InvalidInput(f"unknown label {label!r}")
    threshold = await session.scalar(
        sa.select(Threshold).where(
            Threshold.model_id == model.id, Threshold.classification_id == cls.id
        )
    )
    before: dict[str, Any] = {}
    if threshold is None:
        threshold = Threshold(model_id=model.id, classification_id=cls.id, threshold=value)
        session.add(threshold)
    else:
        before = {"threshold": threshold.threshold, "method": threshold.method}
    threshold.threshold = value
    threshold.method = "manual"
    threshold.set_by = who
    threshold.set_at = utcnow()
    _audit(
        session,
        who,
        "set_threshold",
        "threshold",
        f"{model.id}/{label}",
        before=before,
        after={"threshold": value, "method": "manual"},
    )
    await session.flush()
    return threshold


# --- shadow evaluation ------------------------------------------------------------------


async def _shadow_of_plot_type(session: AsyncSession, plot_type_id: int) -> ModelShadow | None:
    return await session.get(ModelShadow, plot_type_id, populate_existing=True)


async def shadow_of(session: AsyncSession, model_id: int) -> ModelShadow | None:
    """The model's shadow (its rule, who started it), or None when it is not in shadow."""
    found: ModelShadow | None = await session.scalar(
        sa.select(ModelShadow)
        .where(ModelShadow.model_id == model_id)
        .execution_options(populate_existing=True)
    )
    return found


def _rule(shadow: ModelShadow) -> dict[str, Any]:
    return {"min_images": shadow.min_images, "min_agreement": shadow.min_agreement}


async def check_shadow_rule(session: AsyncSession, shadow: ModelShadow) -> None:
    """Conflict unless the shadow's promotion rule holds (no rule: it holds)."""
    problem = rule_problem(shadow, await shadow_figures.figures(session, shadow.model_id))
    if problem:
        raise Conflict(f"model {shadow.model_id} may not be promoted yet: {problem}")


def rule_problem(shadow: ModelShadow, figures: shadow_figures.ShadowFigures) -> str:
    """Why the shadow's promotion rule does not hold yet ('' when it holds)."""
    if shadow.min_images is not None and figures.compared < shadow.min_images:
        return (
            f"the rule wants {shadow.min_images} images compared in shadow,"
            f" {figures.compared} so far"
        )
    if shadow.min_agreement is not None:
        agreement = figures.agreement
        if agreement is None or agreement < shadow.min_agreement:
            shown = "none yet" if agreement is None else f"{agreement:.3f}"
            return (
                f"the rule wants an agreement with the active model of at least"
                f" {shadow.min_agreement:.3f}, it is {shown}"
            )
    return ""


async def start_shadow(
    session: AsyncSession,
    model_id: int,
    by: str,
    *,
    min_images: int | None = None,
    min_agreement: float | None = None,
) -> ModelShadow:
    """Run a trained or retired model in shadow beside its plot type's active model, with an
    optional promotion rule. A plot type has one shadow model at a time."""
    who = _who(by)
    if min_images is not None and min_images < 1:
        raise InvalidInput(f"min_images is at least 1, not {min_images}")
    if min_agreement is not None and not 0.0 <= min_agreement <= 1.0:
        raise InvalidInput(f"min_agreement is between 0 and 1, not {min_agreement}")
    model = await get_model(session, model_id)
    pt = await _lock_plot_type(session, model.plot_type_id)
    await session.refresh(model)
    if pt.active_model_id == model.id:
        raise Conflict(f"model {model_id} is the active model; only another model runs in shadow")
    if model.status not in PROMOTABLE:
        raise Conflict(
            f"model {model_id} is {model.status.value}; only a trained or retired model"
            " runs in shadow"
        )
    current = await _shadow_of_plot_type(session, pt.id)
    if current is not None:
        if current.model_id == model.id:
            raise Conflict(f"model {model_id} is already in shadow")
        raise Conflict(
            f"model {current.model_id} is in shadow for plot type {pt.name!r}; stop it first"
        )
    shadow = ModelShadow(
        plot_type_id=pt.id,
        model_id=model.id,
        started_by=who,
        started_at=utcnow(),
        min_images=min_images,
        min_agreement=min_agreement,
    )
    session.add(shadow)
    _audit(session, who, "shadow_start", "model", model.id, before={}, after=_rule(shadow))
    await session.flush()
    return shadow


async def stop_shadow(session: AsyncSession, model_id: int, by: str) -> None:
    """Stop running the model in shadow (its recorded verdicts stay)."""
    who = _who(by)
    model = await get_model(session, model_id)
    await _lock_plot_type(session, model.plot_type_id)
    current = await _shadow_of_plot_type(session, model.plot_type_id)
    if current is None or current.model_id != model.id:
        raise Conflict(f"model {model_id} is not in shadow")
    _audit(session, who, "shadow_stop", "model", model.id, before=_rule(current), after={})
    await session.delete(current)
    await session.flush()


# --- what the model server holds --------------------------------------------------------


def _served_versions(
    models: Iterable[Model],
    active_ids: dict[int, int | None],
    shadow_ids: frozenset[int] = frozenset(),
) -> dict[str, set[int]]:
    per_plot_type: dict[int, list[Model]] = defaultdict(list)
    for m in models:
        per_plot_type[m.plot_type_id].append(m)
    served: dict[str, set[int]] = defaultdict(set)
    for plot_type_id, active_id in active_ids.items():
        group = per_plot_type.get(plot_type_id, [])
        chosen = candidate_models(group, active_id)
        previous = previous_active(group, active_id)
        if previous is not None:
            chosen.append(previous)
        chosen.extend(m for m in group if m.id == active_id or m.id in shadow_ids)
        for m in chosen:
            served[m.name].add(int(m.version))
    return dict(served)


async def serving_versions(session: AsyncSession) -> dict[str, set[int]]:
    """Model name → the versions a model server must hold: every plot type's active model,
    its candidates, its shadow model and its previous active model (so a rollback serves at
    once)."""
    active_ids: dict[int, int | None] = {
        pid: aid
        for pid, aid in (await session.execute(sa.select(PlotType.id, PlotType.active_model_id)))
        .tuples()
        .all()
    }
    models = await session.scalars(
        sa.select(Model).where(
            Model.status.in_((ModelStatus.ACTIVE, ModelStatus.TRAINED, ModelStatus.RETIRED))
        )
    )
    shadow_ids = frozenset((await session.scalars(sa.select(ModelShadow.model_id))).all())
    return _served_versions(models, active_ids, shadow_ids)


async def model_statuses(session: AsyncSession) -> dict[tuple[str, int], ModelStatus]:
    """(model name, version) → status, for every recorded model."""
    rows = await session.execute(sa.select(Model.name, Model.version, Model.status))
    return {(name, int(version)): status for name, version, status in rows.tuples()}
