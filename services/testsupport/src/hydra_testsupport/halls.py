"""A plot type of a test's own and its models, for tests of the model life cycle.

Tests on the session's shared MariaDB database keep apart by plot type: each ``ModelHall``
makes one with a unique name (labels Good and Bad), then adds model versions to it with the
status, parent and promotion time a test needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hydra_common.db.schema import (
    Classification,
    Model,
    ModelStatus,
    PlotType,
    PlotTypeClassification,
    utcnow,
)

T = TypeVar("T")


class ModelHall:
    """A plot type of its own (the MariaDB database is shared) and helpers to add models."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.name = f"pt_{uuid.uuid4().hex[:8]}"
        self.plot_type_id = 0
        self._version = 0

    async def setup(self) -> Self:
        """Create the plot type, with the labels Good and Bad."""
        async with self.sessions() as s, s.begin():
            pt = PlotType(name=self.name)
            s.add(pt)
            await s.flush()
            for label in ("Good", "Bad"):
                cid = await s.scalar(
                    sa.select(Classification.id).where(Classification.name == label)
                )
                s.add(PlotTypeClassification(plot_type_id=pt.id, classification_id=cid))
            self.plot_type_id = pt.id
        return self

    async def model(
        self,
        status: ModelStatus = ModelStatus.TRAINED,
        parent: int | None = None,
        promoted_ago: float | None = None,
    ) -> int:
        """Add the next version (an active one becomes the plot type's active model);
        returns its id."""
        self._version += 1
        async with self.sessions() as s, s.begin():
            m = Model(
                plot_type_id=self.plot_type_id,
                name=self.name,
                version=self._version,
                architecture="small",
                label_order=["Good", "Bad"],
                status=status,
                parent_model_id=parent,
                promoted_at=None
                if promoted_ago is None
                else utcnow() - timedelta(seconds=promoted_ago),
            )
            s.add(m)
            await s.flush()
            if status == ModelStatus.ACTIVE:
                pt = await s.get(PlotType, self.plot_type_id)
                assert pt is not None
                pt.active_model_id = m.id
            return int(m.id)

    async def state(self) -> tuple[int | None, dict[int, ModelStatus]]:
        """The active model's id and every model's status."""
        async with self.sessions() as s:
            pt = await s.get(PlotType, self.plot_type_id)
            assert pt is not None
            rows = await s.execute(
                sa.select(Model.id, Model.status).where(Model.plot_type_id == self.plot_type_id)
            )
            return pt.active_model_id, dict(rows.tuples().all())

    async def run(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``fn(session, *args)`` in a transaction of its own."""
        async with self.sessions() as s, s.begin():
            return await fn(s, *args)
