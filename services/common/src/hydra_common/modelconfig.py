"""TF Serving's model config file, written from the database: ``hydra model-config``.

The file (``HYDRA_MODEL_CONFIG_FILE``, TF Serving's ``--model_config_file``) is a
``ModelServerConfig`` in protobuf text format with one ``config`` per model name, listing
exactly the versions the model server must hold (``lifecycle.serving_versions``): each plot
type's active model, its candidates, its shadow model (``lifecycle.start_shadow``) and its
previous active model, so a promotion or a rollback serves at once and a shadow model is
served beside the active one. TF Serving polls the file (``--model_config_file_poll_wait_seconds``)
and so does the bundled model server.

The text format is written by hand: the API and feeder images carry no TensorFlow, and the
``tensorflow-serving-api`` package needs it. The tests parse the output with the real proto.

``watch`` also prunes: version directories that are no longer listed and no longer needed
(retired, failed, or unknown to the database) are deleted once they have been unlisted for
``HYDRA_MODEL_PRUNE_SECONDS``, always keeping the newest ``HYDRA_MODEL_PRUNE_KEEP`` versions
of each model name. Trained and active models are never pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import ModelStatus
from hydra_common.lifecycle import model_statuses, serving_versions
from hydra_common.logs import get_logger
from hydra_common.settings import HydraSettings

log = get_logger(__name__)

PLATFORM = "tensorflow"
# Statuses whose files must stay: they serve, or may serve after a promotion.
_NEVER_PRUNED = frozenset({ModelStatus.TRAINING, ModelStatus.TRAINED, ModelStatus.ACTIVE})


@dataclass(frozen=True)
class ModelEntry:
    """One ``config`` of the file: a model name, where its versions live, which to load."""

    name: str
    base_path: str
    versions: tuple[int, ...]


_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote(value: str) -> str:
    """A text-format string literal: UTF-8 kept, quotes, backslashes and control bytes
    escaped (octal), as protobuf's ``CEscape`` does."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render(entries: Iterable[ModelEntry]) -> str:
    """The ``ModelServerConfig`` text format of ``entries`` (sorted by name); an empty list
    is a valid config (a model server with no models)."""
    lines = ["model_config_list {"]
    for entry in sorted(entries, key=lambda e: e.name):
        lines += [
            "  config {",
            f"    name: {_quote(entry.name)}",
            f"    base_path: {_quote(entry.base_path)}",
            f"    model_platform: {_quote(PLATFORM)}",
            "    model_version_policy {",
            "      specific {",
            *(f"        versions: {v}" for v in sorted(set(entry.versions))),
            "      }",
            "    }",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def entries_for(served: Mapping[str, Iterable[int]], base_root: str) -> list[ModelEntry]:
    """The file's entries for ``served`` (model name → versions) under ``base_root``."""
    root = base_root.rstrip("/") or "/"
    return [
        ModelEntry(name, f"{root}/{name}" if root != "/" else f"/{name}", tuple(sorted(vs)))
        for name, vs in served.items()
        if vs
    ]


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` atomically (temporary file in the same folder, then rename) unless the
    file already holds it; True when written. A reader never sees half a file."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def versions_on_disk(model_root: Path) -> dict[str, set[int]]:
    """Model name → the numeric version directories under ``model_root``."""
    found: dict[str, set[int]] = {}
    if not model_root.is_dir():
        return found
    for model in model_root.iterdir():
        if model.is_dir() and not model.name.startswith("."):
            found[model.name] = {
                int(v.name) for v in model.iterdir() if v.is_dir() and v.name.isdigit()
            }
    return found


@dataclass
class Pruner:
    """Deletes version directories that stayed unlisted and unneeded past the grace period.

    The time a version was first seen unlisted is kept in memory: a restarted writer starts
    the grace period again, which errs on the side of keeping files.
    """

    model_root: Path
    grace_seconds: float
    keep: int
    clock: Callable[[], float] = time.monotonic
    unlisted_since: dict[tuple[str, int], float] = field(default_factory=dict)

    def prune(
        self, listed: Mapping[str, set[int]], statuses: Mapping[tuple[str, int], ModelStatus]
    ) -> list[Path]:
        """Delete what is due; returns the deleted directories."""
        now = self.clock()
        removed: list[Path] = []
        seen: set[tuple[str, int]] = set()
        for name, versions in versions_on_disk(self.model_root).items():
            kept = set(sorted(versions, reverse=True)[: self.keep])
            for version in versions:
                key = (name, version)
                status = statuses.get(key)
                if version in listed.get(name, set()) or version in kept or status in _NEVER_PRUNED:
                    continue
                seen.add(key)
                since = self.unlisted_since.setdefault(key, now)
                if now - since < self.grace_seconds:
                    continue
                path = self.model_root / name / str(version)
                shutil.rmtree(path, ignore_errors=True)
                self.unlisted_since.pop(key, None)
                removed.append(path)
                log.info(
                    "model version pruned",
                    extra={
                        "model": name,
                        "version": version,
                        "status": status.value if status else "unknown",
                        "path": str(path),
                    },
                )
        for key in set(self.unlisted_since) - seen:
            del self.unlisted_since[key]  # listed again, needed again, or gone
        return removed


class ModelConfigMetrics:
    """The writer's metrics (``hydra_modelconfig_*``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.writes = Counter(
            "hydra_modelconfig_writes_total",
            "Times the model config file changed.",
            [],
            registry=registry,
        )
        self.failures = Counter(
            "hydra_modelconfig_refresh_failures_total",
            "Refreshes that failed (database or file system); the last file stays.",
            registry=registry,
        )
        self.pruned = Counter(
            "hydra_modelconfig_pruned_versions_total",
            "Model version directories deleted by the pruner.",
            registry=registry,
        )
        self.listed = Gauge(
            "hydra_modelconfig_listed_versions",
            "Model versions the file lists (active, candidates, shadow, previous active).",
            registry=registry,
        )
        self.last_success = Gauge(
            "hydra_modelconfig_last_success_timestamp_seconds",
            "When the file last matched the database (Unix time).",
            registry=registry,
        )


class ModelConfigWriter:
    """Keeps the model config file in step with the database, and prunes old versions."""

    def __init__(
        self,
        settings: HydraSettings,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = ModelConfigMetrics(registry if registry is not None else CollectorRegistry())
        self.path = settings.model_config_path
        self.base_root = settings.model_base_path or str(settings.model_root)
        self.engine = make_engine(settings.db_url)
        self.sessions = make_sessionmaker(self.engine)
        self.pruner = Pruner(
            settings.model_root, settings.model_prune_seconds, settings.model_prune_keep, clock
        )
        self._missing: set[tuple[str, int]] = set()

    async def close(self) -> None:
        """Release the database connections."""
        await self.engine.dispose()

    async def write_once(self, prune: bool = False) -> bool:
        """Read the database, write the file if it changed (True), prune if asked."""
        async with self.sessions() as session:
            served = await serving_versions(session)
            statuses = await model_statuses(session) if prune else {}
        text = render(entries_for(served, self.base_root))
        written = await asyncio.to_thread(write_if_changed, self.path, text)
        self.metrics.listed.set(sum(len(v) for v in served.values()))
        self.metrics.last_success.set(time.time())
        if written:
            self.metrics.writes.inc()
            log.info(
                "model config written",
                extra={
                    "path": str(self.path),
                    "models": ",".join(
                        f"{n}:{'+'.join(map(str, sorted(v)))}" for n, v in sorted(served.items())
                    )[:2000],
                },
            )
        await asyncio.to_thread(self._warn_missing, served)
        if prune:
            removed = await asyncio.to_thread(self.pruner.prune, served, statuses)
            self.metrics.pruned.inc(len(removed))
        return written

    def _warn_missing(self, served: Mapping[str, set[int]]) -> None:
        """Log once per version listed but absent from the model directory (a pruned retired
        model promoted again, or a volume mounted elsewhere)."""
        if not self.settings.model_root.is_dir():
            return
        on_disk = versions_on_disk(self.settings.model_root)
        missing = {(n, v) for n, vs in served.items() for v in vs if v not in on_disk.get(n, ())}
        for name, version in sorted(missing - self._missing):
            log.warning(
                "listed model version not on disk", extra={"model": name, "version": version}
            )
        self._missing = missing

    async def watch(self, stop: asyncio.Event) -> None:
        """Write and prune every ``HYDRA_MODEL_CONFIG_POLL_SECONDS`` until ``stop``; a database
        that fails leaves the last file in place."""
        log.info(
            "model config writer started",
            extra={"path": str(self.path), "poll_seconds": self.settings.model_config_poll_seconds},
        )
        while not stop.is_set():
            try:
                await self.write_once(prune=True)
            except Exception as exc:
                self.metrics.failures.inc()
                log.warning("model config not refreshed", extra={"error": str(exc)[:500]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.model_config_poll_seconds)
