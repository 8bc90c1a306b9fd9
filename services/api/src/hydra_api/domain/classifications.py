"""The hall's labels (classifications): adding and changing them, audited (the rules:
``hydra_common.labels``, shared with ``hydra label``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import audit
from hydra_api.models import ClassificationIn, ClassificationOut, ClassificationUpdate
from hydra_common import labels
from hydra_common.db.schema import User


async def create(session: AsyncSession, body: ClassificationIn, admin: User) -> ClassificationOut:
    """Add a label to the hall's set (Conflict when one of the same name exists, ignoring
    case), and commit."""
    label = await labels.create_label(
        session,
        body.name,
        color=body.color,
        description=body.description,
        trainable=body.trainable,
        alarm=body.alarm,
    )
    out = ClassificationOut.model_validate(label)
    audit(session, admin, "create", "classification", label.id, after=out.model_dump())
    await session.commit()
    return out


async def update(
    session: AsyncSession, classification_id: int, body: ClassificationUpdate, admin: User
) -> ClassificationOut:
    """Change a label's colour, description, alarm or trainable flag, and commit."""
    label, before, after = await labels.update_label(
        session,
        classification_id,
        color=body.color,
        description=body.description,
        trainable=body.trainable,
        alarm=body.alarm,
    )
    out = ClassificationOut.model_validate(label)
    audit(session, admin, "update", "classification", label.id, before=before, after=after)
    await session.commit()
    return out
