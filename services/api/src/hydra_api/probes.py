"""The Status page's live figures: each pipeline service's own ``/metrics``, read on demand.

The keeper leaves a heartbeat in the database, but the balancer has no database at all, and
its queue depth is the figure a shift crew looks at first when verdicts lag. So the API reads
the Prometheus endpoints listed in ``HYDRA_STATUS_TARGETS`` (``service=URL`` pairs; ``hydra
up`` and the Helm chart fill it in) when the Status page asks, at most every few seconds
whatever the number of open pages, each with a short timeout and all at once: a service that
does not answer shows as unreachable, it never slows the page down.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from hydra_common.db.schema import utcnow

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Enough for every figure a service exports, small enough that a wrong URL cannot flood us.
_MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """One service's metrics endpoint."""

    service: str
    url: str

    @property
    def instance(self) -> str:
        """Host and port, as the Status page shows it."""
        return urlsplit(self.url).netloc


def parse_targets(spec: str) -> list[Target]:
    """``"balancer=http://h:9102/metrics,feeder=..."`` → targets; a clear error otherwise."""
    targets = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        service, sep, url = (s.strip() for s in part.partition("="))
        if not sep or not _NAME.match(service):
            raise ValueError(f"status target {part!r} is not service=URL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"status target {service}: {url!r} is not an http(s) URL")
        targets.append(Target(service, url))
    return targets


def figures(text: str, service: str) -> dict[str, float]:
    """The scalar figures of an exposition: gauges and counters, summed over their labels.

    Names lose their ``hydra_<service>_`` prefix (``hydra_balancer_queue_depth`` →
    ``queue_depth``) and counters their ``_total``; histograms, summaries and the client's
    own process/platform figures are left out.
    """
    prefix = f"hydra_{service}_"
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.type not in ("gauge", "counter") or not family.name.startswith("hydra_"):
            continue
        if family.name.endswith("_created"):  # the client's creation timestamps
            continue
        wanted = family.name + ("_total" if family.type == "counter" else "")
        total = sum(s.value for s in family.samples if s.name == wanted)
        if not math.isfinite(total):
            continue
        key = family.name.removeprefix(prefix) if family.name.startswith(prefix) else family.name
        out[key] = int(total) if float(total).is_integer() else round(total, 6)
    return out


@dataclass
class Reading:
    """What one target said the last time it was asked."""

    target: Target
    ok: bool
    details: dict[str, Any]
    last_seen: datetime | None


def _fetch(url: str, timeout: float) -> str:
    request = urllib.request.Request(url, headers={"Accept": "text/plain"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return str(response.read(_MAX_BYTES).decode("utf-8", "replace"))


@dataclass
class StatusProbe:
    """Reads every target at most once per ``max_age`` seconds, however many pages ask."""

    targets: list[Target]
    timeout: float = 1.0
    max_age: float = 3.0
    _readings: list[Reading] = field(default_factory=list)
    _read_at: float = -math.inf
    _seen: dict[Target, datetime] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def read(self) -> list[Reading]:
        """Every target's latest figures (read now if the last reading is too old)."""
        if not self.targets:
            return []
        async with self._lock:
            if time.monotonic() - self._read_at >= self.max_age:
                self._readings = list(await asyncio.gather(*(self._one(t) for t in self.targets)))
                self._read_at = time.monotonic()
            return self._readings

    async def _one(self, target: Target) -> Reading:
        try:
            text = await asyncio.to_thread(_fetch, target.url, self.timeout)
            details: dict[str, Any] = figures(text, target.service)
        except Exception as exc:  # unreachable, refused, not an exposition: shown, not raised
            error = f"{type(exc).__name__}: {exc}"[:200]
            return Reading(target, False, {"error": error}, self._seen.get(target))
        self._seen[target] = now = utcnow()
        return Reading(target, True, details, now)
