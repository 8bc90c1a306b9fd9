"""The Log, Status and Summary pages, and run conditions."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Query, Request

from hydra_api.common import PageDep
from hydra_api.deps import AdminUser, OptionalUser, Reader, SessionDep, StateDep
from hydra_api.domain import monitoring
from hydra_api.inputs import Id, RunNumberQuery
from hydra_api.models import (
    Detail,
    LogPage,
    Page,
    RunConditionIn,
    RunConditionOut,
    ServiceStatusOut,
    StatusOut,
    SummaryOut,
)
from hydra_common.db.schema import Role
from hydra_common.errors import PermissionDenied, Unauthenticated

router = APIRouter(tags=["monitoring"])


@router.get("/api/log", response_model=LogPage)
async def get_log(
    session: SessionDep,
    page: PageDep,
    _reader: Reader,
    hours: Annotated[float, Query(gt=0, le=24 * 31)] = 24,
    detector: Annotated[str | None, Query(max_length=64)] = None,
    transitions_only: bool = False,
) -> LogPage:
    """Confirmed alarms and unconfirmed verdicts of the trailing hours, by detector
    (newest first within each); ``transition`` marks where something changed."""
    return await monitoring.log_page(session, page, hours, detector, transitions_only)


@router.get("/api/status", response_model=StatusOut)
async def get_status(
    session: SessionDep,
    state: StateDep,
    _reader: Reader,
    hours: Annotated[float, Query(gt=0, le=24 * 7)] = 24,
) -> StatusOut:
    """Services' heartbeats, per-stage processing-time distributions and per-run averages,
    and inferences per hour: every inference of the window (from its first whole hour),
    from the hourly figures the keeper keeps (``stage_hourly``)."""
    # Services without a database heartbeat (the balancer above all): their own /metrics.
    probed = [
        ServiceStatusOut(
            service=r.target.service,
            instance=r.target.instance,
            state="serving" if r.ok else "unreachable",
            details=r.details,
            last_seen=r.last_seen,
            alive=r.ok,
        )
        for r in await state.probe.read()
    ]
    return await monitoring.status(session, hours, probed)


@router.get("/api/summary", response_model=SummaryOut)
async def get_summary(session: SessionDep, state: StateDep, _reader: Reader) -> SummaryOut:
    """The deployment's figures, counted on every visit (the run history's from the
    verdicts per run the keeper keeps)."""
    return await monitoring.summary(session, state.settings.hall)


@router.get("/api/run-conditions", response_model=Page[RunConditionOut])
async def list_run_conditions(
    session: SessionDep, page: PageDep, _reader: Reader, run_number: RunNumberQuery = None
) -> Page[RunConditionOut]:
    """Recorded run conditions, latest first (``limit=1`` for the current ones)."""
    return await monitoring.run_conditions(session, page, run_number)


def _service_token_ok(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value, token)


@router.post("/api/run-conditions", response_model=RunConditionOut, status_code=201)
async def record_run_conditions(
    body: RunConditionIn,
    request: Request,
    session: SessionDep,
    state: StateDep,
    user: OptionalUser,
) -> RunConditionOut:
    """Record run conditions (beam current, run type): developers, admins, or hall scripts
    with the service token (``Authorization: Bearer ...``)."""
    if _service_token_ok(request, state.settings.service_token):
        who = "service-token"
    elif user is None:
        raise Unauthenticated("log in or send the service token")
    elif user.role not in (Role.ADMIN, Role.DEVELOPER):
        raise PermissionDenied(f"role {user.role.value} may not record run conditions")
    else:
        who = user.username
    return await monitoring.record_run_conditions(session, body, who)


@router.delete("/api/run-conditions/{run_condition_id}", response_model=Detail)
async def delete_run_condition(
    run_condition_id: Id, session: SessionDep, admin: AdminUser
) -> Detail:
    """Remove a wrongly recorded run-conditions row (admins; audited with what it held)."""
    await monitoring.delete_run_condition(session, run_condition_id, admin)
    return Detail(detail="deleted")
