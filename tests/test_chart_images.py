"""The service Dockerfiles: one image per service with only that service's dependencies.

No Docker engine exists here, so the builder stage's own COPY and RUN steps are replayed in a
scratch directory with the real uv and the real lock file; the runtime stage is checked as text.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {
    "feeder": "feeder",
    "balancer": "balancer",
    "predictor": "predictor",
    "keeper": "keeper",
    "api": "api",
    "trainer": "train",
    "modelserver": "model-server",
}


def dockerfile(service: str) -> str:
    return (ROOT / "services" / service / "Dockerfile").read_text()


def logical_lines(text: str) -> list[str]:
    """Instructions with continuations joined and comments dropped."""
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
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


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_dockerfile_shape(service: str) -> None:
    text = dockerfile(service)
    froms = [line for line in logical_lines(text) if line.startswith("FROM")]
    assert any(line.endswith("AS builder") for line in froms)
    assert froms[-1] == "FROM python:${PYTHON_VERSION}-slim AS runtime"
    assert "ARG PYTHON_VERSION=3.11" in text
    builder = stage(text, "builder")
    syncs = [line for line in builder if "uv sync" in line]
    assert len(syncs) == 2
    assert all(
        f"--package hydra-{service}" in s and "--frozen" in s and "--no-dev" in s for s in syncs
    )
    runtime = stage(text, "runtime")
    assert "USER 10001:10001" in runtime
    assert runtime[-1] == f'ENTRYPOINT ["hydra", "{SERVICES[service]}"]'
    # Only the builder's virtual environment reaches the runtime image: no uv, no sources.
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies[0] == "COPY --from=builder /opt/hydra /opt/hydra"
    assert all("--from=" in line for line in copies)


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "**/node_modules", "tests"} <= set(ignored)


@pytest.mark.parametrize(
    ("service", "present", "absent"),
    [
        ("feeder", {"watchfiles", "pillow"}, {"tensorflow", "numpy", "keras", "kubernetes"}),
        ("keeper", {"pillow", "numpy"}, {"tensorflow", "keras", "kubernetes"}),
        ("balancer", {"grpcio"}, {"tensorflow", "numpy", "pillow"}),
        ("predictor", {"tensorflow-serving-api"}, {"kubernetes", "watchfiles"}),
        ("api", {"fastapi", "kubernetes"}, {"tensorflow", "keras"}),
    ],
)
def test_each_image_carries_only_its_dependencies(
    service: str, present: set[str], absent: set[str]
) -> None:
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    proc = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--package", f"hydra-{service}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    names = {
        re.split(r"[=<>; \[]", line.strip(), maxsplit=1)[0].lower()
        for line in proc.stdout.splitlines()
        if line and not line.startswith(("#", " ", "-e", "./"))
    }
    assert present <= names
    assert not (absent & names), absent & names


def test_builder_stage_replayed_installs_no_tensorflow(tmp_path: Path) -> None:
    """Run the feeder's builder stage (COPY/ENV/RUN) with the real uv, outside Docker."""
    service = "feeder"
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    src, opt = tmp_path / "src", tmp_path / "opt" / "hydra"

    def here(path: str) -> Path:
        return Path(path.replace("/opt/hydra", str(opt)).replace("/src", str(src), 1))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    workdir = src
    for line in stage(dockerfile(service), "builder"):
        op, _, rest = line.partition(" ")
        if op == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = str(here(value)) if value.startswith("/") else value
        elif op == "WORKDIR":
            workdir = here(rest)
            workdir.mkdir(parents=True, exist_ok=True)
        elif op == "COPY" and "--from=" in rest:
            continue  # the uv binary: the test uses the installed one
        elif op == "COPY":
            *sources, dest = rest.split()
            for source in sources:
                target = workdir / dest / (Path(source).name if dest.endswith("/") else "")
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, dirs_exist_ok=True)
                else:
                    shutil.copy(ROOT / source, target)
        elif op == "RUN":
            env["UV_COMPILE_BYTECODE"] = "0"  # saves the test a minute; not what is checked
            command = re.sub(r"--mount=\S+\s*", "", rest).replace("uv ", f"{uv} ", 1)
            subprocess.run(["bash", "-c", command], cwd=workdir, env=env, check=True, timeout=600)
    site = next(opt.glob("lib/python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"hydra_common", f"hydra_{service}"} <= installed
    assert not {"tensorflow", "keras", "tensorflow_serving_api"} & installed
    # The package is installed as a wheel, not a link back to the build's sources.
    assert (site / f"hydra_{service}" / "__init__.py").is_file()
    help_text = subprocess.run(
        [opt / "bin" / "hydra", "--help"], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert service in help_text
