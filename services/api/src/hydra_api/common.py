"""Small helpers the routers and the domain share: pagination, image URLs and the audit log
(the queries they share: ``hydra_api.domain.queries``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.models import MAX_LIMIT
from hydra_common.db.schema import AuditLog, User

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
