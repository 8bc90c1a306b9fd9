"""The images: one parametrised deploy/Dockerfile, each image with only its dependencies.

No Docker engine exists here, so the builder stage's COPY and RUN steps are replayed in a
scratch directory with the real uv and the real lock file (for the predictor, whose image must
import TF Serving's stubs without TensorFlow); the rest is checked as text, and
deploy/image_contents.py resolves every image's packages from uv.lock.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy import image_contents as ic
from hydra_common import plugins

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SERVICES = ("feeder", "balancer", "predictor", "keeper", "api", "trainer", "modelserver")


def logical_lines(text: str) -> list[str]:
    """Instructions with continuations joined and comments dropped."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def stage(text: str, name: str) -> list[str]:
    lines = logical_lines(text)
    start = next(
        i for i, line in enumerate(lines) if line.startswith("FROM") and line.endswith(f"AS {name}")
    )
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("FROM")), len(lines))
    return lines[start + 1 : end]


def test_one_dockerfile_replaces_the_per_service_copies() -> None:
    assert not list((ROOT / "services").glob("*/Dockerfile"))
    makefile = (ROOT / "Makefile").read_text()
    assert "-f deploy/Dockerfile --build-arg SERVICE=$$s" in makefile
    assert "--build-arg SERVICE=trainer --build-arg VARIANT=gpu" in makefile


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    froms = [line for line in logical_lines(text) if line.startswith("FROM")]
    assert froms[-1] == "FROM python:${PYTHON_VERSION}-slim AS runtime"
    assert "FROM static-${SERVICE} AS static" in froms
    # Every service has its static stage (the API's builds the front end; others are empty).
    for service in SERVICES:
        assert any(f.endswith(f"AS static-{service}") for f in froms), service
    assert ic.check_dockerfile(text)
    runtime = stage(text, "runtime")
    assert "USER 10001:10001" in runtime
    assert runtime[-1] == 'ENTRYPOINT ["hydra-service"]'
    # Only the builder's environment and the static files reach the runtime image.
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies == [
        "COPY --from=builder /opt/hydra /opt/hydra",
        "COPY --from=static /static /opt/hydra-static",
    ]
    builder = "\n".join(stage(text, "builder"))
    # The command each image runs comes from the service registry (test_service_registry
    # checks that every image_command is a real `hydra` command).
    assert 'python -m hydra_common.plugins image-command "$SERVICE"' in builder
    assert plugins.service("trainer").image_command == ("train",)
    assert plugins.service("modelserver").image_command == ("model-server",)


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "**/node_modules", "tests", "services/*/tests"} <= set(ignored)
    # The Dockerfile lives in deploy/, but the context needs none of deploy/'s other files.
    assert "deploy" in ignored


def test_image_contents_no_tensorflow_but_in_trainer_and_model_server() -> None:
    lines = ic.report()
    assert len(lines) == 8
    by_image = {line.split(":")[0]: line for line in lines}
    for image in ("feeder", "balancer", "predictor", "keeper", "api"):
        assert "no TensorFlow" in by_image[f"hydra-{image}"], by_image[f"hydra-{image}"]
    assert "tensorflow" in by_image["hydra-trainer"]
    assert "tensorflow" in by_image["hydra-trainer-gpu"]


@pytest.mark.parametrize(
    ("image", "present", "absent"),
    [
        ("feeder", {"watchfiles", "pillow"}, {"tensorflow", "numpy", "keras", "kubernetes"}),
        ("keeper", {"pillow", "numpy"}, {"tensorflow", "keras", "kubernetes"}),
        ("balancer", {"grpcio"}, {"tensorflow", "numpy", "pillow"}),
        ("predictor", {"grpcio", "protobuf", "numpy"}, {"tensorflow", "tensorflow-serving-api"}),
        ("api", {"fastapi", "kubernetes"}, {"tensorflow", "keras"}),
        ("trainer", {"tensorflow"}, {"nvidia-cudnn-cu12", "kubernetes"}),
        ("trainer-gpu", {"tensorflow", "nvidia-cudnn-cu12", "nvidia-cublas-cu12"}, set()),
    ],
)
def test_each_image_carries_only_its_dependencies(
    image: str, present: set[str], absent: set[str]
) -> None:
    spec = next(i for i in ic.IMAGES if i.name == image)
    names = ic.packages(spec)
    assert present <= names
    assert not (absent & names), absent & names


def test_the_check_fails_on_tensorflow_in_a_service_image() -> None:
    with pytest.raises(ic.ImageError, match="hydra-predictor would carry tensorflow"):
        ic.check_image(ic.Image("predictor", "predictor"), {"grpcio", "tensorflow"})
    with pytest.raises(ic.ImageError, match="CUDA"):
        ic.check_image(ic.Image("trainer-gpu", "trainer", ("gpu",)), {"tensorflow"})
    broken = DOCKERFILE.read_text().replace("--frozen", "")
    with pytest.raises(ic.ImageError, match="--frozen"):
        ic.check_dockerfile(broken)


def test_builder_stage_replayed_predictor_imports_stubs_without_tensorflow(
    tmp_path: Path,
) -> None:
    """Run the predictor's builder stage (COPY/ENV/RUN) with the real uv, outside Docker."""
    service = "predictor"
    uv = ic.uv()
    src, opt = tmp_path / "src", tmp_path / "opt" / "hydra"

    def here(path: str) -> str:
        return path.replace("/opt/hydra", str(opt)).replace("/src", str(src), 1)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    env.update(SERVICE=service, VARIANT="cpu")
    workdir = src
    for line in stage(DOCKERFILE.read_text(), "builder"):
        op, _, rest = line.partition(" ")
        if op == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = here(value) if value.startswith("/") else value
        elif op == "WORKDIR":
            workdir = Path(here(rest))
            workdir.mkdir(parents=True, exist_ok=True)
        elif op in ("ARG",) or (op == "COPY" and "--from=" in rest):
            continue  # build arguments are in env; the uv binary: the installed one is used
        elif op == "COPY":
            *sources, dest = rest.split()
            for source in sources:
                target = workdir / dest / (Path(source).name if dest.endswith("/") else "")
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source,
                        workdir / dest,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("tests", "__pycache__", ".ruff_cache"),
                    )
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, target)
        elif op == "RUN":
            env["UV_COMPILE_BYTECODE"] = "0"  # saves the test a minute; not what is checked
            command = re.sub(r"--mount=\S+\s*", "", rest).replace("uv sync", f"{uv} sync")
            command = here(command) if "/opt/hydra" in command else command
            subprocess.run(["bash", "-c", command], cwd=workdir, env=env, check=True, timeout=600)
    site = next(opt.glob("lib/python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"hydra_common", f"hydra_{service}"} <= installed
    assert not {"tensorflow", "keras", "tensorflow_serving_api"} & installed
    assert (site / "tensorflow_serving" / "apis" / "predict_pb2.py").is_file()
    python = opt / "bin" / "python"
    probe = (
        "import sys, hydra_predictor.tfs as t; "
        "assert 'tensorflow' not in sys.modules; "
        "r = t.predict_pb2.PredictRequest(); r.model_spec.name = 'm'; "
        "print(type(t.prediction_service_pb2_grpc.PredictionServiceStub).__name__, "
        "r.SerializeToString().hex())"
    )
    out = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["type", "0a030a016d"]
    assert (opt / "bin" / "hydra-service").read_text().splitlines()[
        -1
    ] == 'exec hydra predictor "$@"'
