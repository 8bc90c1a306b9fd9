"""Small helpers the routers share: pagination, image URLs, colours and the audit log."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.models import MAX_LIMIT
from hydra_common.db.schema import AuditLog, Classification, PlotType, User
from hydra_common.errors import NotFound

NO_MODEL_COLOR = "#000000"
# The database's OFFSET is an unsigned 64-bit number; past it MariaDB fails the query (500).
MAX_OFFSET = 2**63 - 1


class Pagination:
    """``limit`` (1..500) and ``offset`` of a list request."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset

    def next_offset(self, returned: int, total: int | None = None) -> int | None:
        """The offset of the following page, or None at the end."""
        end = self.offset + returned
        if total is not None:
            return end if end < total else None
        return end if returned == self.limit else None


PageDep = Annotated[Pagination, Depends()]


def file_url(path: str | None) -> str | None:
    """The API URL of a file under the storage root."""
    if not path:
        return None
    return "/api/files/" + quote(path.lstrip("/"))


async def colors(session: AsyncSession) -> dict[str, str]:
    """Label name -> display colour ("NoModel" is black)."""
    rows = await session.execute(sa.select(Classification.name, Classification.color))
    result = {name: color for name, color in rows.tuples()}
    result.setdefault("NoModel", NO_MODEL_COLOR)
    return result


async def plot_type_by_name(session: AsyncSession, name: str) -> PlotType:
    """The plot type called name; 404 when there is none."""
    pt = await session.scalar(sa.select(PlotType).where(PlotType.name == name))
    if pt is None:
        raise NotFound(f"no plot type {name!r}")
    return pt


async def count(session: AsyncSession, stmt: sa.Select[*tuple[Any, ...]]) -> int:
    """Rows a select would return."""
    total = await session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery()))
    return int(total or 0)


def audit(
    session: AsyncSession,
    user: User | str,
    action: str,
    entity: str,
    entity_id: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a change in audit_log (in the caller's transaction)."""
    session.add(
        AuditLog(
            username=user if isinstance(user, str) else user.username,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=before or {},
            after=after or {},
        )
    )
