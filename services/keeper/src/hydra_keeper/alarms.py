"""Raising alarms: a metric for Prometheus alert rules, a log event, and the hall's hook.

The hook (``HYDRA_ALARM_COMMAND``) runs in the background with the alarm as JSON on
stdin; a slow or failing hook never holds up recording.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time

from hydra_common.logs import get_logger
from hydra_keeper.metrics import KeeperMetrics
from hydra_keeper.writer import Alarm

log = get_logger(__name__)

MAX_RUNNING_COMMANDS = 8
COMMAND_TIMEOUT_SECONDS = 30.0
CLOSE_WAIT_SECONDS = 5.0


class AlarmDispatcher:
    """Raises committed alarms; runs the optional alarm command without blocking."""

    def __init__(self, metrics: KeeperMetrics, command: str, hall: str) -> None:
        self.metrics = metrics
        self.argv = shlex.split(command) if command.strip() else []
        self.hall = hall
        self._tasks: set[asyncio.Task[None]] = set()

    def raise_alarms(self, alarms: list[Alarm]) -> None:
        """Count, log and hand each alarm to the alarm command (if one is configured)."""
        for alarm in alarms:
            payload = {"hall": self.hall, "raised_at": time.time(), **alarm.as_dict()}
            self.metrics.alarms.inc()
            log.warning(
                "alarm",
                extra={
                    "order_id": alarm.order_id,
                    "plot_type": alarm.plot_type,
                    "run_number": alarm.run_number,
                    "chunk": alarm.chunk,
                    "verdict": alarm.verdict,
                    "confidence": alarm.confidence,
                    "beam_current": alarm.beam_current,
                },
            )
            if not self.argv:
                continue
            if len(self._tasks) >= MAX_RUNNING_COMMANDS:
                log.error(
                    "alarm command skipped: too many still running",
                    extra={"order_id": alarm.order_id},
                )
                continue
            task = asyncio.create_task(self._run(payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, payload: dict[str, object]) -> None:
        order_id = payload.get("order_id")
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            log.error("alarm command cannot start", extra={"order_id": order_id, "error": str(exc)})
            return
        try:
            _, err = await asyncio.wait_for(
                proc.communicate(json.dumps(payload).encode()), COMMAND_TIMEOUT_SECONDS
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("alarm command timed out", extra={"order_id": order_id})
            return
        if proc.returncode != 0:
            log.error(
                "alarm command failed",
                extra={
                    "order_id": order_id,
                    "returncode": proc.returncode,
                    "stderr": err.decode(errors="replace")[-500:],
                },
            )

    async def close(self) -> None:
        """Wait a little for running alarm commands, then leave them be."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLOSE_WAIT_SECONDS)
