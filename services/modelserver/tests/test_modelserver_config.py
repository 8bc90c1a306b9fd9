"""The bundled model server follows the model config file that ``hydra model-config`` writes
(the file TF Serving reads): exactly the listed versions load, unlisted ones unload."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

tf = pytest.importorskip("tensorflow")

from tensorflow_serving.apis import (  # noqa: E402
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from hydra_common.grpcserver import channel  # noqa: E402
from hydra_common.modelconfig import ModelEntry, render, write_if_changed  # noqa: E402
from hydra_modelserver.service import ModelServerService  # noqa: E402
from hydra_modelserver.settings import ModelServerSettings  # noqa: E402
from hydra_testsupport import eventually_async as eventually  # noqa: E402
from hydra_trainer.export import export_untrained_model  # noqa: E402

from .test_modelserver_api import LABELS, png, predict_request  # noqa: E402

pytestmark = pytest.mark.tf

MODEL = "RF_time"


def listing(model_dir: Path, versions: tuple[int, ...]) -> str:
    return render([ModelEntry(MODEL, str(model_dir / MODEL), versions)])


@pytest.fixture(scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[ModelServerService, Path]]:
    model_dir = tmp_path_factory.mktemp("models")
    export_untrained_model(model_dir, MODEL, 1, LABELS, input_size=32)
    for version in (2, 3):  # the same graph again: copying is cheaper than exporting
        shutil.copytree(model_dir / MODEL / "1", model_dir / MODEL / str(version))
    config = model_dir / "models.config"
    write_if_changed(config, listing(model_dir, (1,)))
    service = ModelServerService(
        ModelServerSettings(
            model_dir=model_dir,
            model_config_file=config,
            model_server_host="127.0.0.1",
            model_server_port=0,
            model_poll_seconds=0.1,
            grace_seconds=1,
        ),
        CollectorRegistry(),
    )
    await service.start()
    yield service, model_dir
    await service.stop()


def loaded(service: ModelServerService) -> set[int]:
    return set(service.repository.models.get(MODEL, {}))


async def test_exactly_the_listed_versions_load_and_unload(
    served: tuple[ModelServerService, Path],
) -> None:
    service, model_dir = served
    config = service.settings.model_config_path
    # Started from the file: only version 1, though 1, 2 and 3 are on disk.
    assert loaded(service) == {1}
    assert service.repository.following == "config"
    async with channel(f"127.0.0.1:{service.port}") as ch:
        predict = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        models = model_service_pb2_grpc.ModelServiceStub(ch)
        latest = await predict.Predict(predict_request([png(1)], name=MODEL), timeout=60)
        assert latest.model_spec.version.value == 1  # "latest" among the listed, not on disk

        write_if_changed(config, listing(model_dir, (2, 3)))
        await eventually(lambda: loaded(service) == {2, 3})
        pinned = await predict.Predict(predict_request([png(2)], name=MODEL, version=3), timeout=60)
        assert pinned.model_spec.version.value == 3
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await predict.Predict(predict_request([png(2)], name=MODEL, version=1), timeout=60)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        status = await models.GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(model_spec={"name": MODEL}), timeout=30
        )
        assert {s.version for s in status.model_version_status} == {2, 3}

        # A version listed before its files exist loads once they arrive.
        write_if_changed(config, listing(model_dir, (3, 4)))
        await eventually(lambda: loaded(service) == {3})
        staging = model_dir.parent / f"{model_dir.name}-staging"
        shutil.copytree(model_dir / MODEL / "1", staging / "4")
        shutil.move(staging / "4", model_dir / MODEL / "4")
        await eventually(lambda: loaded(service) == {3, 4})

        # A file that is not a model config changes nothing; an empty list unloads all.
        write_if_changed(config, "model_config_list { config { nonsense")
        await service.rescan()
        assert loaded(service) == {3, 4}
        write_if_changed(config, render([]))
        await eventually(lambda: loaded(service) == set())
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await predict.Predict(predict_request([png(3)], name=MODEL), timeout=60)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        # Without the file, the server falls back to the directory: everything on disk.
        config.unlink()
        await eventually(lambda: loaded(service) == {1, 2, 3, 4})
        assert service.repository.following == "directory"
