"""The trainer's entry in the service registry, and its ``hydra`` commands: plot types and
labels, import and train, the model life cycle (promote, rollback, models), and the demo
(simulate, bootstrap-demo, demo).

Each command group is a module of ``hydra_trainer.commands``. They are imported when the
commands are registered, not with this module: the registry loads every service's entry
point, and the demo's group imports the launcher, which reads the registry. TensorFlow is
imported only by the commands that need it, so ``hydra plot-type add`` and ``hydra
simulate`` start in a moment.
"""

from __future__ import annotations

import typer

from hydra_common.plugins import ServiceDescriptor
from hydra_trainer.settings import TrainerSettings


def register(app: typer.Typer) -> None:
    """Add the trainer's commands to the ``hydra`` application."""
    from hydra_trainer.commands import demo, labels, models, plot_types, training

    for group in (plot_types, labels, training, models, demo):
        group.register(app)


SERVICE = ServiceDescriptor(
    name="trainer",
    title="trainer",
    settings=TrainerSettings,
    register_cli=register,  # not a process under ``hydra up``: a command and a Job
    order=70,
    stop_order=70,
    image_command=("train",),
)
