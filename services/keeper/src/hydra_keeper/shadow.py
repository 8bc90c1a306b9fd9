"""Shadow verdicts: a report's ``shadow`` result into ``shadow_history``, apart from
everything the active model's verdict drives (run history, run time, the log, alarms, kept
images).

Called by the batch writer in the same transaction as the batch, for its new reports
only, so a replayed report adds nothing (and the (order, model) key is upserted besides).
Where the shadow and active verdicts differ, the image is stored under ``shadow/`` for the
Library to show; a file that cannot be written costs only the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from hydra.v1 import report_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from hydra_common.db.schema import InferenceStatus, Model, ShadowHistory, utcnow
from hydra_common.logs import get_logger
from hydra_keeper import storage
from hydra_keeper.dbutil import upsert
from hydra_keeper.reference import PlotTypeInfo
from hydra_keeper.verdicts import WEIGHT_DIGITS, Judgement

log = get_logger(__name__)
shadow_history_t = ShadowHistory.__table__


class Recorded(Protocol):
    """What the writer knows of a new report (its ``hydra_keeper.entries.Entry``)."""

    report: report_pb2.Report
    order_id: str
    plot_type: PlotTypeInfo
    model_id: int | None
    judgement: Judgement


def shadow_image_path(plot_type: str, order_id: str, ext: str) -> str:
    """Relative path of an image where the shadow model disagreed with the active one."""
    return (
        f"shadow/{storage.safe_name(plot_type)}/{storage.order_day(order_id)}/"
        f"{storage.safe_name(order_id)}.{ext}"
    )


def _verdict(result: report_pb2.ShadowResult) -> tuple[str, float, dict[str, float]] | None:
    """The shadow model's top label, its weight and all weights; None when it failed."""
    labels, raw = result.labels, result.weights
    if result.status != report_pb2.REPORT_STATUS_OK or not labels or len(labels) != len(raw):
        return None
    weights = {label: round(w, WEIGHT_DIGITS) for label, w in zip(labels, raw, strict=True)}
    top = max(weights, key=weights.__getitem__)
    return top, weights[top], weights


def rows(root: Path, entries: Iterable[Recorded]) -> list[dict[str, Any]]:
    """The shadow_history rows of a batch's new reports, writing disagreement images (call
    it in a worker thread: it writes files)."""
    out = []
    now = utcnow()
    for e in entries:
        if not e.report.HasField("shadow"):
            continue
        result = e.report.shadow
        order = e.report.order
        read = _verdict(result)
        active_ok = e.judgement.status is InferenceStatus.OK
        agrees = None if read is None or not active_ok else read[0] == e.judgement.model_verdict
        image_path = None
        if agrees is False and order.image:
            image_path = _store(root, e)
        error = result.error or ("" if read is not None else "malformed shadow result")
        out.append(
            {
                "order_id": e.order_id,
                "model_id": result.model_id,
                "plot_type_id": e.plot_type.id,
                "active_model_id": e.model_id,
                "run_number": order.run_number,
                "chunk": order.chunk,
                "ok": read is not None,
                "verdict": read[0][:32] if read else "",
                "confidence": read[1] if read else 0.0,
                "weights": read[2] if read else {},
                "active_verdict": e.judgement.model_verdict[:32],
                "agrees": agrees,
                "seconds_per_image": max(0.0, result.seconds_per_image),
                "active_seconds_per_image": max(0.0, result.active_seconds_per_image),
                "error": error[:1024],
                "image_path": image_path,
                "created_at": now,
            }
        )
    return out


def _store(root: Path, e: Recorded) -> str | None:
    order = e.report.order
    ext = storage.image_ext(order.source_path, order.image, e.plot_type.file_type)
    rel = shadow_image_path(e.plot_type.name, e.order_id, ext)
    try:
        storage.write_atomic(root, rel, order.image, durable=True)
    except OSError as exc:
        log.warning(
            "shadow disagreement image not stored",
            extra={"order_id": e.order_id, "reason": storage.storage_problem(exc)},
        )
        return None
    return rel


async def insert(conn: AsyncConnection, shadow_rows: Sequence[dict[str, Any]]) -> None:
    """Record the rows (in the batch's transaction); rows naming a model the database does not
    know are dropped, so a shadow result never costs its report."""
    if not shadow_rows:
        return
    ids = list({r["model_id"] for r in shadow_rows})
    known = set(
        (await conn.execute(sa.select(Model.__table__.c.id).where(Model.__table__.c.id.in_(ids))))
        .scalars()
        .all()
    )
    kept = [r for r in shadow_rows if r["model_id"] in known]
    if len(kept) < len(shadow_rows):
        log.warning(
            "shadow results name an unknown model; dropped",
            extra={"model_ids": ",".join(str(i) for i in set(ids) - known)},
        )
    await upsert(conn, shadow_history_t, kept, ["order_id", "model_id"])
