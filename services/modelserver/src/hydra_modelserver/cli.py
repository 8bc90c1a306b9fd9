"""``hydra model-server``: the bundled TF Serving-compatible model server."""

from __future__ import annotations

import asyncio

import typer

from hydra_common.plugins import Listener, ServiceDescriptor
from hydra_modelserver.settings import ModelServerSettings


def register(app: typer.Typer) -> None:
    """Add the ``model-server`` command to the ``hydra`` CLI."""

    @app.command("model-server")
    def model_server() -> None:
        """Serve the models under HYDRA_MODEL_DIR over TF Serving's gRPC API (port 8500)."""
        # TensorFlow is imported only when the command runs, so `hydra --help` stays fast,
        # and without Keras where nothing imported it yet (hydra_modelserver.lean).
        from hydra_modelserver.lean import without_keras

        without_keras()
        from hydra_modelserver.service import main

        asyncio.run(main())


SERVICE = ServiceDescriptor(
    name="modelserver",
    title="model server",
    settings=ModelServerSettings,
    register_cli=register,
    module="hydra_modelserver",
    listener=Listener(
        "model_server_port",
        "model_server_host",
        "model server gRPC",
        address_setting="model_server_address",
    ),
    metrics_port=9105,
    status_probe=True,
    order=10,
    stop_order=40,
    image_command=("model-server",),
    replicas_setting="model_server_replicas",
)
