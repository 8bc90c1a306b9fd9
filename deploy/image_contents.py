#!/usr/bin/env python3
"""What each Hydra image installs, resolved exactly as deploy/Dockerfile installs it.

The Dockerfile runs ``uv sync --frozen --no-dev --package hydra-<SERVICE>`` (plus ``--extra
gpu`` for the GPU trainer); ``uv export`` with the same flags, from the same uv.lock and with
no network, lists the same packages. The script fails when:

- the Dockerfile no longer installs that way (then this resolution would be a guess);
- an image other than the trainer's and the model server's would carry TensorFlow (or Keras,
  or tensorflow-serving-api, which pulls TensorFlow in);
- the GPU trainer lacks TensorFlow's CUDA libraries, or the CPU trainer carries them.

Run by ``make chart-check``; tests/test_chart_images.py calls the same functions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SERVICES = ("feeder", "balancer", "predictor", "keeper", "api", "trainer", "modelserver")
TENSORFLOW_IMAGES = frozenset({"trainer", "trainer-gpu", "modelserver"})
TENSORFLOW = frozenset(
    {"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "tensorflow-serving-api"}
)
CUDA_MARKER = "nvidia-cudnn-cu12"


class ImageError(Exception):
    """An image would not hold what it should; the message says which and why."""


@dataclass(frozen=True)
class Image:
    """One image: the service it runs and the uv flags of its Dockerfile build."""

    name: str
    service: str
    extras: tuple[str, ...] = ()


IMAGES = (*(Image(s, s) for s in SERVICES), Image("trainer-gpu", "trainer", ("gpu",)))


def uv() -> str:
    return shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")


def check_dockerfile(text: str | None = None) -> list[str]:
    """The Dockerfile's `uv sync` lines, which must install one package, frozen, no dev."""
    text = text if text is not None else DOCKERFILE.read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()]
    syncs = [line for line in lines if "uv sync" in line and not line.startswith("#")]
    if len(syncs) != 2:
        raise ImageError(f"deploy/Dockerfile: expected 2 `uv sync` steps, found {len(syncs)}")
    for line in syncs:
        for flag in ("--frozen", "--no-dev", "--package hydra-$SERVICE", "$extra"):
            if flag not in line:
                raise ImageError(f"deploy/Dockerfile: `uv sync` without {flag}: {line}")
    if '"$VARIANT" = gpu ] && echo "--extra gpu"' not in text:
        raise ImageError("deploy/Dockerfile: the gpu variant no longer adds `--extra gpu`")
    return syncs


def packages(image: Image) -> set[str]:
    """Distribution names (normalised) that the image's `uv sync` installs."""
    cmd = [uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-workspace"]
    cmd += ["--package", f"hydra-{image.service}"]
    for extra in image.extras:
        cmd += ["--extra", extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"uv export for {image.name} failed:\n{proc.stderr}")
    names = set()
    for line in proc.stdout.splitlines():
        if line and not line.startswith(("#", " ", "-e", "./")):
            name = re.split(r"[=<>;@ \[]", line.strip(), maxsplit=1)[0]
            names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def check_image(image: Image, names: set[str]) -> str:
    """One line on the image; raises ImageError when it carries what it must not."""
    tf = sorted(TENSORFLOW & names)
    if image.name not in TENSORFLOW_IMAGES and tf:
        raise ImageError(f"hydra-{image.name} would carry {', '.join(tf)}")
    if image.name == "trainer-gpu" and CUDA_MARKER not in names:
        raise ImageError("hydra-trainer (gpu) lacks TensorFlow's CUDA libraries")
    if image.name == "trainer" and any(n.startswith("nvidia-") for n in names):
        raise ImageError("hydra-trainer (cpu) would carry CUDA libraries")
    carries = ", ".join(tf) if tf else "no TensorFlow"
    return f"hydra-{image.name}: {len(names)} packages, {carries}"


def report() -> list[str]:
    """Check the Dockerfile and every image; one line per image."""
    check_dockerfile()
    return [check_image(image, packages(image)) for image in IMAGES]


def main() -> int:
    try:
        lines = report()
    except ImageError as exc:
        print(f"FAIL {exc}")
        return 1
    print("== image contents (uv.lock, as deploy/Dockerfile installs them)")
    for line in lines:
        print(f"   {line}")
    print("   ok: TensorFlow only in the trainer's and the model server's images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
