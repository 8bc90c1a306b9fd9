#!/usr/bin/env python3
"""Generate TF Serving's client stubs for the predictor image, without TensorFlow.

``tensorflow-serving-api`` depends on all of ``tensorflow`` (about 2 GB) for a few protobuf
modules. This script takes the file descriptors of the modules the predictor imports
(``hydra_predictor.tfs``: predict, get_model_metadata, the PredictionService, and the tensor
protos) and their dependencies from the installed packages (the development environment has
them through the model server), and regenerates the Python modules with ``grpc_tools`` into
``services/common/tfserving_stubs`` under their original module names. The predictor's image
copies that folder into its site-packages (deploy/Dockerfile); no other image, and no
development environment, has it on its path, so nothing shadows the real TensorFlow.

    python deploy/tfserving_stubs.py OUT_DIR   # make proto / make proto-check
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from google.protobuf import descriptor_pb2

# What hydra_predictor.tfs imports; their dependencies come along.
ROOTS = (
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.prediction_service_pb2",
    "tensorflow_serving.apis.get_model_metadata_pb2",
    "tensorflow.core.framework.tensor_pb2",
    "tensorflow.core.framework.tensor_shape_pb2",
    "tensorflow.core.framework.types_pb2",
)
GRPC_SERVICES = ("tensorflow_serving/apis/prediction_service.proto",)


def _import(name: str) -> types.ModuleType:
    """Import a stub module without running tensorflow/__init__ (as hydra_predictor.tfs does)."""
    if "tensorflow" not in sys.modules:
        spec = importlib.util.find_spec("tensorflow")
        if spec is not None and spec.submodule_search_locations:
            shell = types.ModuleType("tensorflow")
            shell.__path__ = list(spec.submodule_search_locations)
            sys.modules["tensorflow"] = shell
    return importlib.import_module(name)


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """Every file the roots need, dependencies first (protoc wants them in that order)."""
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    seen: set[str] = set()

    def visit(file: object) -> None:
        name = file.name  # type: ignore[attr-defined]
        if name in seen:
            return
        seen.add(name)
        for dep in file.dependencies:  # type: ignore[attr-defined]
            visit(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)  # type: ignore[attr-defined]
        ordered.append(proto)

    for name in ROOTS:
        visit(_import(name).DESCRIPTOR)
    return descriptor_pb2.FileDescriptorSet(file=ordered)


def generate(out: Path) -> list[Path]:
    """Write the stubs under ``out``; returns the files written."""
    fds = descriptor_set()
    files = [f.name for f in fds.file if not f.name.startswith("google/protobuf/")]
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        set_path = Path(tmp) / "tfserving.binpb"
        set_path.write_bytes(fds.SerializeToString())
        base = [sys.executable, "-m", "grpc_tools.protoc", f"--descriptor_set_in={set_path}"]
        subprocess.run([*base, f"--python_out={out}", *files], check=True)
        subprocess.run([*base, f"--grpc_python_out={out}", *GRPC_SERVICES], check=True)
    return sorted(out.rglob("*.py"))


if __name__ == "__main__":
    written = generate(Path(sys.argv[1]))
    print(f"{len(written)} TF Serving stub modules in {sys.argv[1]}")
