"""``hydra model-server``: the bundled TF Serving-compatible model server."""

from __future__ import annotations

import asyncio

import typer


def register(app: typer.Typer) -> None:
    """Add the ``model-server`` command to the ``hydra`` CLI."""

    @app.command("model-server")
    def model_server() -> None:
        """Serve the models under HYDRA_MODEL_DIR over TF Serving's gRPC API (port 8500)."""
        # TensorFlow is imported only when the command runs, so `hydra --help` stays fast.
        from hydra_modelserver.service import main

        asyncio.run(main())
