"""Liveness and readiness: the API answers and reaches its database."""

from __future__ import annotations

from fastapi import APIRouter

from hydra_api.deps import SessionDep
from hydra_api.domain.queries import database_answers
from hydra_api.models import Detail, Health
from hydra_common.errors import ModelNotReady

router = APIRouter(tags=["health"])


class DatabaseUnavailable(ModelNotReady):
    """The database does not answer (HTTP 503)."""


@router.get("/api/health", response_model=Health, responses={503: {"model": Detail}})
async def health(session: SessionDep) -> Health:
    """OK when the database answers a query."""
    try:
        await database_answers(session)
    except Exception as exc:
        raise DatabaseUnavailable("database unreachable") from exc
    return Health()
