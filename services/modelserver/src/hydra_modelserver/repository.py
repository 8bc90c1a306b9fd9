"""The model repository: TF Serving's base-path layout, loaded into TensorFlow in-process.

Layout: ``<model_dir>/<model name>/<version>/saved_model.pb``. Which versions serve:

- When the model config file exists (``HYDRA_MODEL_CONFIG_FILE``, the file TF Serving reads
  with ``--model_config_file``, written by ``hydra model-config``), exactly the versions it
  lists under each model's ``base_path`` (``specific`` versions; ``latest`` and ``all``
  policies as TF Serving reads them), once their files are there.
- Otherwise every numeric version directory under the model directory (the ``all`` policy).

A request for a specific version gets that version, a request without one gets the highest.
Both sources are polled; new versions are loaded, versions no longer wanted are unloaded. A
version that fails to load is retried when its files change (an exporter still writing it).
"""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.config import model_server_config_pb2

from hydra_common.errors import HydraError, InvalidInput, ModelNotFound
from hydra_common.logs import get_logger

log = get_logger(__name__)

SAVED_MODEL_FILE = "saved_model.pb"
DEFAULT_SIGNATURE = "serving_default"


class ServingError(HydraError):
    """An error with an explicit gRPC code, as TF Serving would return it."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.grpc_code = code


def _status_code_of(exc: tf.errors.OpError) -> grpc.StatusCode:
    """TensorFlow's status codes and gRPC's share numbers; TF Serving passes them through."""
    for code in grpc.StatusCode:
        if code.value[0] == exc.error_code:
            return code
    return grpc.StatusCode.UNKNOWN


@dataclass
class Signature:
    """One signature of a loaded SavedModel: its concrete function and tensor specs."""

    name: str
    function: Any  # a tf ConcreteFunction taking the inputs as keyword arguments
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]

    def run(
        self, inputs: Mapping[str, Any], output_filter: list[str]
    ) -> dict[str, Any]:  # TensorProto in, TensorProto out
        """Validate request tensors, run the function and encode the outputs (blocking).

        Validation and messages follow TF Serving's ``PreProcessPrediction`` so a client sees
        the same INVALID_ARGUMENT texts from either server.
        """
        self._check_input_names(inputs)
        wanted = self._output_names(output_filter)
        args = {alias: self._to_tensor(alias, proto) for alias, proto in inputs.items()}
        try:
            result = self.function(**args)
        except tf.errors.OpError as exc:
            raise ServingError(_status_code_of(exc), exc.message) from exc
        except (TypeError, ValueError) as exc:
            raise InvalidInput(str(exc)) from exc
        return {alias: tensor_to_proto(np.asarray(result[alias])) for alias in wanted}

    def _check_input_names(self, inputs: Mapping[str, Any]) -> None:
        sent, expected = set(inputs), set(self.inputs)
        if len(sent) != len(expected):
            raise InvalidInput(
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}."
            )
        extra = sorted(sent - expected)
        if extra:
            raise InvalidInput(
                f"input tensor alias not found in signature: {extra[0]}. "
                f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}."
            )

    def _output_names(self, output_filter: list[str]) -> list[str]:
        if not output_filter:
            return sorted(self.outputs)
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in self.outputs:
                raise InvalidInput(
                    f"output tensor alias not found in signature: {alias} Outputs expected "
                    f"to be in the set {{{','.join(sorted(self.outputs))}}}."
                )
            if alias in seen:
                raise InvalidInput(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return list(output_filter)

    def _to_tensor(self, alias: str, proto: Any) -> tf.Tensor:
        spec = self.inputs[alias]
        if proto.dtype != spec.dtype.as_datatype_enum:
            raise InvalidInput(
                f"Expects arg {alias} to be {spec.dtype.name} but "
                f"{types_pb2.DataType.Name(proto.dtype)} is provided"
            )
        try:
            array = tf.make_ndarray(proto)
        except Exception as exc:  # any malformed TensorProto is the caller's fault
            raise InvalidInput(f"tensor parsing error: {alias}") from exc
        if not spec.shape.is_compatible_with(array.shape):
            raise InvalidInput(
                f"input {alias} has shape {list(array.shape)}, "
                f"the signature expects {spec.shape.as_list()}"
            )
        return tf.constant(array, dtype=spec.dtype)


# Outputs are encoded in the typed repeated fields, as TF Serving does by default
# (``AsProtoField``); other dtypes fall back to tensor_content, which every client reads.
_PROTO_FIELDS = {
    np.dtype(np.float32): "float_val",
    np.dtype(np.float64): "double_val",
    np.dtype(np.int32): "int_val",
    np.dtype(np.int64): "int64_val",
    np.dtype(np.bool_): "bool_val",
}


# float_val and double_val travel packed: their wire form is the tag, the byte length and
# the little-endian values themselves, so the field is parsed from the array's bytes instead
# of being appended value by value from a Python list (a 128 x 128 Grad-CAM map: 0.52 ms ->
# 0.01 ms; a batch of 32: 27 ms -> 0.24 ms). The message is the same either way.
_PACKED = {
    np.dtype(np.float32): ("float_val", "<f4"),
    np.dtype(np.float64): ("double_val", "<f8"),
}
_WIRE_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _packed_tag(field_name: str) -> bytes:
    number = tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name[field_name].number
    return _varint(number << 3 | _WIRE_LENGTH_DELIMITED)


_PACKED_TAGS = {dtype: _packed_tag(name) for dtype, (name, _) in _PACKED.items()}


def tensor_to_proto(array: np.ndarray) -> Any:
    """A TensorProto of ``array`` in TF Serving's default (typed field) encoding."""
    field_name = _PROTO_FIELDS.get(array.dtype)
    if field_name is None:
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=int(size))
    packed = _PACKED.get(array.dtype)
    if packed is not None and array.size:
        data = np.ascontiguousarray(array, dtype=packed[1]).tobytes()
        proto.MergeFromString(_PACKED_TAGS[array.dtype] + _varint(len(data)) + data)
    else:
        getattr(proto, field_name).extend(array.ravel().tolist())
    return proto


@dataclass
class LoadedVersion:
    """A loaded, servable model version."""

    name: str
    version: int
    path: Path
    signatures: dict[str, Signature]
    signature_defs: dict[str, Any]  # SignatureDef protos from saved_model.pb
    handle: Any = field(repr=False)  # keeps the loaded object (and its variables) alive

    def signature(self, name: str) -> Signature:
        """The named signature (empty = ``serving_default``); FAILED_PRECONDITION if absent."""
        key = name or DEFAULT_SIGNATURE
        try:
            return self.signatures[key]
        except KeyError:
            # TF Serving's own status and text for an unknown signature key.
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.'
            ) from None


def read_signature_defs(version_dir: Path) -> dict[str, Any]:
    """The SignatureDefs of a SavedModel's first meta graph, as TF Serving reports them."""
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((version_dir / SAVED_MODEL_FILE).read_bytes())
    if not saved.meta_graphs:
        return {}
    return {
        key: meta_graph_pb2.SignatureDef.FromString(value.SerializeToString())
        for key, value in saved.meta_graphs[0].signature_def.items()
    }


def load_version(name: str, version: int, path: Path) -> LoadedVersion:
    """Load a SavedModel version directory with TensorFlow (blocking)."""
    handle = tf.saved_model.load(str(path))
    signatures: dict[str, Signature] = {}
    for key, function in handle.signatures.items():
        _, kwargs = function.structured_input_signature
        outputs = function.structured_outputs
        signatures[key] = Signature(
            name=key,
            function=function,
            inputs=dict(kwargs),
            outputs=dict(outputs) if isinstance(outputs, Mapping) else {},
        )
    return LoadedVersion(name, version, path, signatures, read_signature_defs(path), handle)


@dataclass(frozen=True)
class FailedVersion:
    """A version that did not load, with the file state it failed on."""

    fingerprint: tuple[int, int]
    error: str


def _fingerprint(version_dir: Path) -> tuple[int, int]:
    """Changes when the version's files change: (newest mtime, total size)."""
    newest = total = 0
    for item in version_dir.rglob("*"):
        try:
            st = item.stat()
        except FileNotFoundError:
            continue
        newest = max(newest, st.st_mtime_ns)
        total += st.st_size
    return newest, total


def discover(root: Path) -> dict[tuple[str, int], Path]:
    """Every ``<root>/<name>/<version>/saved_model.pb`` on disk (blocking)."""
    found: dict[tuple[str, int], Path] = {}
    if not root.is_dir():
        return found
    for model in root.iterdir():
        if not model.is_dir() or model.name.startswith("."):
            continue
        for version in model.iterdir():
            # Only numeric directories are versions (exporters write to hidden temp dirs).
            if version.name.isdigit() and (version / SAVED_MODEL_FILE).is_file():
                found[(model.name, int(version.name))] = version
    return found


# Each model's version listing by base path, with the (inode, mtime) of the base directory it
# was read at. Listing every model's directory on every 2 s poll cost 1.2 ms of CPU per poll
# for the pipeline bench's 53 models (0.5 with this cache): a version directory that
# appears, goes or is renamed in changes its parent's mtime, so an unchanged parent needs
# only one stat. Not cached: a listing with a version directory that has no saved_model.pb
# yet (an exporter writing in place adds it without touching the parent), and one whose
# parent changed under a second ago (a change within the file system's timestamp tick
# would not show in the mtime).
_VERSIONS_CACHE: dict[Path, tuple[tuple[int, int], dict[int, Path]]] = {}
RACY_SECONDS = 1.0


def _versions_in(base: Path) -> dict[int, Path]:
    try:
        st = base.stat()
    except (FileNotFoundError, NotADirectoryError):
        _VERSIONS_CACHE.pop(base, None)
        return {}
    if not stat.S_ISDIR(st.st_mode):
        _VERSIONS_CACHE.pop(base, None)
        return {}
    key = (st.st_ino, st.st_mtime_ns)
    cached = _VERSIONS_CACHE.get(base)
    if cached is not None and cached[0] == key:
        return dict(cached[1])
    found: dict[int, Path] = {}
    complete = True
    for v in base.iterdir():
        if not v.name.isdigit():
            continue
        if (v / SAVED_MODEL_FILE).is_file():
            found[int(v.name)] = v
        else:
            complete = False
    if complete and time.time_ns() - st.st_mtime_ns > RACY_SECONDS * 1e9:
        _VERSIONS_CACHE[base] = (key, dict(found))
    else:
        _VERSIONS_CACHE.pop(base, None)
    return found


# The last parsed config file by path, with the (inode, size, mtime) it had: the poll reads
# the file every 2 s, and parsing 53 models' text proto was most of the idle model server's
# CPU. The version directories are looked at every poll (a `latest` policy follows them).
_CONFIG_CACHE: dict[Path, tuple[tuple[int, int, int], Any]] = {}


def _parsed_config(config_file: Path) -> Any:
    """The file's ``ModelServerConfig`` (re-parsed only when it changed); None when absent."""
    try:
        st = config_file.stat()
    except FileNotFoundError:
        _CONFIG_CACHE.pop(config_file, None)
        return None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _CONFIG_CACHE.get(config_file)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        text = config_file.read_text()
    except FileNotFoundError:
        return None
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"{config_file}: {exc}") from exc
    _CONFIG_CACHE[config_file] = (key, config)
    return config


def configured(config_file: Path) -> dict[tuple[str, int], Path] | None:
    """The versions the model config file lists that are on disk; None when there is no file
    (blocking). Raises ValueError for a file that is not a ``ModelServerConfig``."""
    config = _parsed_config(config_file)
    if config is None:
        return None
    found: dict[tuple[str, int], Path] = {}
    for model in config.model_config_list.config:
        base = Path(model.base_path)
        if not base.is_absolute():
            base = config_file.parent / base
        on_disk = _versions_in(base)
        policy = model.model_version_policy
        choice = policy.WhichOneof("policy_choice")
        if choice == "specific":
            wanted = [v for v in policy.specific.versions if v in on_disk]
        elif choice == "all":
            wanted = list(on_disk)
        else:  # TF Serving's default: the latest version(s)
            wanted = sorted(on_disk, reverse=True)[: max(1, policy.latest.num_versions)]
        for version in wanted:
            found[(model.name, int(version))] = on_disk[version]
    return found


class ModelRepository:
    """The loaded model versions, kept in step with the model config file or directory."""

    def __init__(
        self,
        root: Path,
        on_change: Callable[[int], None] | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.root = root
        self.config_file = config_file
        self.following: str | None = None  # "config" or "directory", once scanned
        self.models: dict[str, dict[int, LoadedVersion]] = {}
        self.failed: dict[tuple[str, int], FailedVersion] = {}
        self._on_change = on_change
        # The poller and an explicit rescan must not interleave: a scan that saw a version on
        # disk could otherwise load it twice, or record it as failed after the other removed it.
        self._scan_lock = asyncio.Lock()

    @property
    def loaded_count(self) -> int:
        """Number of loaded versions over all models."""
        return sum(len(v) for v in self.models.values())

    async def scan(self) -> None:
        """Load new versions and unload removed ones; never raises for a bad model."""
        async with self._scan_lock:
            await self._scan()

    async def _wanted(self) -> dict[tuple[str, int], Path] | None:
        """What should be loaded now; None to keep what is loaded (an unreadable config)."""
        listed = None
        if self.config_file is not None:
            try:
                listed = await asyncio.to_thread(configured, self.config_file)
            except (OSError, ValueError) as exc:
                log.warning(
                    "model config file unreadable; keeping the loaded versions",
                    extra={"path": str(self.config_file), "error": str(exc)[:500]},
                )
                return None
        following = "directory" if listed is None else "config"
        if following != self.following:
            self.following = following
            log.info(
                "model server follows the " + following,
                extra={"path": str(self.config_file if listed is not None else self.root)},
            )
        return listed if listed is not None else await asyncio.to_thread(discover, self.root)

    async def _scan(self) -> None:
        on_disk = await self._wanted()
        if on_disk is None:
            return
        for (name, version), path in sorted(on_disk.items()):
            if version in self.models.get(name, {}):
                continue
            await self._load(name, version, path)
        for name, versions in list(self.models.items()):
            for version in list(versions):
                if (name, version) not in on_disk:
                    del versions[version]
                    log.info("model version unloaded", extra={"model": name, "version": version})
            if not versions:
                del self.models[name]
        for key in list(self.failed):
            if key not in on_disk:
                del self.failed[key]
        if self._on_change is not None:
            self._on_change(self.loaded_count)

    async def _load(self, name: str, version: int, path: Path) -> None:
        fingerprint = await asyncio.to_thread(_fingerprint, path)
        failed = self.failed.get((name, version))
        if failed is not None and failed.fingerprint == fingerprint:
            return  # unchanged since it failed: do not spin on a broken export
        started = time.perf_counter()
        try:
            loaded = await asyncio.to_thread(load_version, name, version, path)
        except Exception as exc:
            self.failed[(name, version)] = FailedVersion(fingerprint, str(exc))
            log.warning(
                "model version failed to load",
                extra={"model": name, "version": version, "error": str(exc)[:500]},
            )
            return
        self.failed.pop((name, version), None)
        self.models.setdefault(name, {})[version] = loaded
        log.info(
            "model version loaded",
            extra={
                "model": name,
                "version": version,
                "signatures": ",".join(sorted(loaded.signatures)),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def resolve(self, spec: Any) -> LoadedVersion:
        """The version a ModelSpec asks for; NOT_FOUND as TF Serving words it."""
        if not spec.name:
            raise InvalidInput("Missing ModelSpec")
        if spec.version_label:
            # No labels are configured on this server, like a TF Serving without a label map.
            raise InvalidInput(f"Unrecognized servable version label: {spec.version_label}")
        versions = self.models.get(spec.name, {})
        if spec.HasField("version"):
            wanted = spec.version.value
            if wanted not in versions:
                raise ModelNotFound(
                    f"Servable not found for request: Specific({spec.name}, {wanted})"
                )
            return versions[wanted]
        if not versions:
            raise ModelNotFound(f"Servable not found for request: Latest({spec.name})")
        return versions[max(versions)]
