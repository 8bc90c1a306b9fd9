"""``hydra demo``: a demo hall from nothing, run by ``hydra up`` with simulated data.

The trainer owns the demo because it owns what the demo needs (``hydra bootstrap-demo``
trains the demo's models, ``hydra simulate`` writes its plots); the stack itself is
``hydra up``'s. The command is ``hydra_trainer.commands.demo``'s. The admin password reaches
the API's process through the stack's environment only, never this process's ``os.environ``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import typer

from hydra_common.launcher import HYDRA_CLI, private_data_dir, run_hydra, up
from hydra_trainer.settings import TrainerSettings


def demo_admin_password(data_dir: Path) -> str:
    """The demo's admin password: HYDRA_ADMIN_PASSWORD, else one made once and kept (0600)."""
    if os.environ.get("HYDRA_ADMIN_PASSWORD"):
        return os.environ["HYDRA_ADMIN_PASSWORD"]
    path = data_dir / "admin-password.txt"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def demo(interval: float) -> None:
    """Set up the demo hall, then run ``hydra up`` with the simulator beside it."""
    settings = TrainerSettings()
    private_data_dir(settings.data_dir)
    input_dir = Path(os.environ.get("HYDRA_INPUT_DIR") or settings.data_dir / "input")
    input_dir.mkdir(parents=True, exist_ok=True)
    password = demo_admin_password(settings.data_dir)

    def prepare(env: Mapping[str, str]) -> list[subprocess.Popen[bytes]]:
        run_hydra("bootstrap-demo", env=env)
        simulate = ["simulate", "--hall", "demo", "--out", str(input_dir)]
        sim = subprocess.Popen(
            [sys.executable, *HYDRA_CLI, *simulate, "--interval", str(interval)],
            env=dict(env),
            start_new_session=True,
        )
        typer.echo(f"Log in as admin / {password}")
        return [sim]

    up(
        env_extra={"HYDRA_INPUT_DIR": str(input_dir), "HYDRA_ADMIN_PASSWORD": password},
        prepare=prepare,
    )
