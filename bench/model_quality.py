"""Model quality: F1 of Bad, the Grad-CAM pointing game, and the trainer's peak memory.

Parts (``--parts``, all by default):

- ``demo``: for each demo plot type a labelled training set and a separate test set are
  simulated (different seeds); a model is fitted, exported as a SavedModel, and the test
  images go through its ``explain`` signature, exactly as the predictor calls it.
- ``hard``: the same on the simulator's ``hard`` mode (subtle defects, more noise) with
  label noise in the training labels (the test labels are true).
- ``foreign``: the same on plots drawn by matplotlib with axes and a colour bar
  (``bench/foreign_plots.py``), ``small`` only.
- ``rss``: peak RSS of the real ``hydra train PLOT_TYPE --arch small --epochs 2`` command on
  N and on 10 x N imported images (a fresh SQLite database each).

Figures per architecture and plot type: ``f1_bad`` (F1 of Bad, top label, no thresholds);
``pointing_game`` (among Bad test images the model calls Bad, the fraction whose heat-map
peak lies inside the injected defect's box); ``pointing_all_bad`` (the same over every Bad
test image). See bench/README.md for the top-level keys.

    python -m bench.model_quality [--parts demo,hard,foreign,rss] [--all] [--merge]

InceptionV3 runs at ``--inception-size`` (139x139 by default on a CPU) for
``--inception-epochs``. Writes ``bench/results/model_quality.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from bench.results import RESULTS, record
from hydra_trainer.architectures import get_architecture
from hydra_trainer.catalog import PlotTypeSpec, hall_catalog
from hydra_trainer.dataset import LabelledImage, build_split_set, expand
from hydra_trainer.export import export_model
from hydra_trainer.importer import scan_tree
from hydra_trainer.render import HEIGHT, WIDTH
from hydra_trainer.simulate import read_truth, write_labelled_set
from hydra_trainer.train import TrainOptions, fit

PARTS = ("demo", "hard", "foreign", "rss")
DEFAULT_ARCH = "inceptionv3"
# Writes a labelled set: (out_dir, spec, counts per label, seed, training set?)
Writer = Callable[[Path, PlotTypeSpec, dict[str, int], int, bool], None]


def _items(root: Path) -> list[LabelledImage]:
    return [LabelledImage(i, str(p), label) for i, (p, label) in enumerate(scan_tree(root))]


def _explain(version_dir: Path, paths: list[str], batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    explain = tf.saved_model.load(str(version_dir)).signatures["explain"]
    weights, heatmaps = [], []
    for start in range(0, len(paths), batch):
        data = [Path(p).read_bytes() for p in paths[start : start + batch]]
        out = explain(image=tf.constant(data))
        weights.append(out["weights"].numpy())
        heatmaps.append(out["heatmap"].numpy())
    return np.concatenate(weights), np.concatenate(heatmaps)


def _peak_in_box(
    heatmap: np.ndarray, box: list[int], size: tuple[int, int] = (WIDTH, HEIGHT)
) -> bool:
    """Whether the heat map's peak, mapped to image pixels (``size`` w, h), is in the box."""
    h, w = heatmap.shape
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    px, py = (x + 0.5) * size[0] / w, (y + 0.5) * size[1] / h
    x0, y0, x1, y1 = box
    return bool(x0 <= px < x1 and y0 <= py < y1)


def _f1(truth: np.ndarray, predicted: np.ndarray, k: int) -> float:
    tp = int(((truth == k) & (predicted == k)).sum())
    fp = int(((truth != k) & (predicted == k)).sum())
    fn = int(((truth == k) & (predicted != k)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _simulator(hard: bool, label_noise: float) -> Writer:
    def write(
        out: Path, spec: PlotTypeSpec, counts: dict[str, int], seed: int, train: bool
    ) -> None:
        noise = label_noise if train else 0.0
        write_labelled_set(out, spec, counts, seed=seed, hard=hard, label_noise=noise)

    return write


def _foreign(out: Path, spec: PlotTypeSpec, counts: dict[str, int], seed: int, train: bool) -> None:
    from bench.foreign_plots import write_foreign_set  # matplotlib: only when asked for

    write_foreign_set(out, spec, counts, seed=seed)


def _pointing(
    test: list[LabelledImage], heatmaps: np.ndarray, predicted: np.ndarray, bad: int
) -> tuple[int, int, int, int]:
    hits_called, n_called, hits_all, n_all = 0, 0, 0, 0
    for i, item in enumerate(test):
        info = read_truth(item.path)
        if item.label != "Bad" or info is None or not info.get("box"):
            continue
        image_size = cast("list[int] | None", info.get("image_size"))  # the sidecar's JSON
        size = cast("tuple[int, int]", tuple(image_size or (WIDTH, HEIGHT)))
        inside = _peak_in_box(heatmaps[i], list(cast("list[int]", info["box"])), size)
        n_all += 1
        hits_all += inside
        if predicted[i] == bad:
            n_called += 1
            hits_called += inside
    return hits_called, n_called, hits_all, n_all


def _input_size(arch_name: str, args: argparse.Namespace) -> tuple[int, int]:
    if arch_name.startswith("inceptionv3") and args.inception_size:
        return args.inception_size  # type: ignore[no-any-return]
    return args.input_size or get_architecture(arch_name).input_size


def evaluate_plot_type(
    spec: PlotTypeSpec,
    arch_name: str,
    args: argparse.Namespace,
    work: Path,
    seed: int,
    writer: Writer,
) -> dict[str, Any]:
    """Train and test one architecture on one plot type."""
    labels = list(spec.labels)
    writer(work / "train", spec, dict.fromkeys(labels, args.per_label), seed, True)
    writer(work / "test", spec, dict.fromkeys(labels, args.test_per_label), seed + 1000, False)
    split = build_split_set(_items(work / "train"), "normal", 0.85, seed)
    arch = get_architecture(arch_name)
    h, w = _input_size(arch_name, args)
    inception = arch_name.startswith("inceptionv3")
    epochs = args.inception_epochs if inception else args.epochs
    options = TrainOptions(
        architecture=arch_name,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        epochs=epochs,
        # InceptionV3 from a random start: its batch norms' moving averages need a few
        # hundred steps before the validation loss means anything, so no early stop.
        batch_size=args.inception_batch_size if inception else 16,
        patience=epochs if inception else 4,
        seed=seed,
        input_height=h,
        input_width=w,
    )
    started = time.perf_counter()
    fitted = fit(arch, labels, expand(split.train), split.validation + split.test, options)
    train_seconds = time.perf_counter() - started
    version = export_model(fitted.model, work / "models", spec.name, 1, labels, architecture=arch)
    test = _items(work / "test")
    weights, heatmaps = _explain(version, [i.path for i in test])
    truth = np.array([labels.index(i.label) for i in test])
    predicted = np.argmax(weights, axis=1)
    bad = labels.index("Bad")
    hits_called, n_called, hits_all, n_all = _pointing(test, heatmaps, predicted, bad)
    return {
        "f1_bad": round(_f1(truth, predicted, bad), 4),
        "accuracy": round(float((truth == predicted).mean()), 4),
        "pointing_game": round(hits_called / n_called, 4) if n_called else None,
        "pointing_all_bad": round(hits_all / n_all, 4) if n_all else None,
        "bad_called": n_called,
        "bad_test_images": n_all,
        "test_images": len(test),
        "train_images": len(split.train),
        "epochs_run": fitted.epochs_run,
        "train_seconds": round(train_seconds, 1),
        "input_size": [h, w],
    }


def evaluate_set(
    name: str, specs: list[PlotTypeSpec], arch_name: str, args: argparse.Namespace, writer: Writer
) -> dict[str, Any]:
    """One architecture over a set of plot types: figures per type and their summary."""
    per_type: dict[str, Any] = {}
    for i, spec in enumerate(specs):
        with tempfile.TemporaryDirectory(prefix="hydra-mq-") as tmp:
            result = evaluate_plot_type(spec, arch_name, args, Path(tmp), 100 + i, writer)
        per_type[spec.name] = result
        print(
            f"{name:8s} {arch_name:18s} {spec.name:20s} F1(Bad) {result['f1_bad']:.3f} "
            f"pointing {result['pointing_game']} (all Bad: {result['pointing_all_bad']}) "
            f"epochs {result['epochs_run']} train {result['train_seconds']} s",
            flush=True,
        )
    summary = summarise(per_type)
    print(
        f"{name} {arch_name}: {json.dumps({k: v for k, v in summary.items() if k != 'plot_types'})}"
    )
    return summary


def summarise(per_type: dict[str, Any]) -> dict[str, Any]:
    """Means and minima over plot types. A plot type where the model called no Bad test
    image has no heat map to point with: it counts as 0 in the pointing game."""
    f1s = [r["f1_bad"] for r in per_type.values()]
    points = [r["pointing_game"] or 0.0 for r in per_type.values()]
    return {
        "plot_types": per_type,
        "mean_f1_bad": round(float(np.mean(f1s)), 4),
        "min_f1_bad": round(float(np.min(f1s)), 4),
        "mean_pointing_game": round(float(np.mean(points)), 4),
        "min_pointing_game": round(float(np.min(points)), 4),
    }


# --- peak memory of the real training command -------------------------------------------

# A fresh wrapper per run, so RUSAGE_CHILDREN holds that one training and nothing else.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(rc)\n"
)


def _hydra(env: dict[str, str], *args: str) -> None:
    hydra = str(Path(sys.executable).with_name("hydra"))
    subprocess.run([hydra, *args], env=env, check=True, stdout=subprocess.DEVNULL)


def train_peak_rss_mb(spec: PlotTypeSpec, n_images: int, epochs: int, work: Path) -> float:
    """Peak RSS (MiB) of ``hydra train`` on ``n_images`` imported images of ``spec``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    env |= {"HYDRA_DATA_DIR": str(work / "data"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    (work / "data").mkdir()
    per_label = -(-n_images // len(spec.labels))
    write_labelled_set(work / "tree", spec, dict.fromkeys(spec.labels, per_label), seed=3)
    _hydra(env, "db", "upgrade")
    _hydra(env, "plot-type", "add", spec.name, "--labels", ",".join(spec.labels))
    _hydra(env, "import", str(work / "tree"), "--plot-type", spec.name)
    hydra = str(Path(sys.executable).with_name("hydra"))
    train = [hydra, "train", spec.name, "--arch", "small", "--epochs", str(epochs)]
    train += ["--sampling", "normal", "--seed", "1"]
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *train],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is KiB on Linux


def measure_rss(n_images: int, epochs: int) -> dict[str, Any]:
    """Peak RSS of training on N and on 10 x N images, and their ratio."""
    spec = hall_catalog("demo")[1]
    figures: dict[str, Any] = {}
    for factor in (1, 10):
        with tempfile.TemporaryDirectory(prefix="hydra-rss-") as tmp:
            started = time.perf_counter()
            mb = train_peak_rss_mb(spec, n_images * factor, epochs, Path(tmp))
            took = time.perf_counter() - started
        figures[f"train_peak_rss_mb_{factor}x"] = round(mb, 1)
        print(f"rss: {n_images * factor} images, peak RSS {mb:.0f} MiB ({took:.0f} s)", flush=True)
    figures["train_peak_rss_ratio_10x"] = round(
        figures["train_peak_rss_mb_10x"] / figures["train_peak_rss_mb_1x"], 3
    )
    return figures


# --- the run ------------------------------------------------------------------------------


def headline(figures: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys (bench/README.md) from the per-part figures."""
    out: dict[str, Any] = {}
    for part in ("demo", "hard", "foreign"):  # recomputed: merged runs summarise alike
        for arch, result in figures.get(part, {}).items():
            figures[part][arch] = summarise(result["plot_types"])
    demo = figures.get("demo", {})
    if DEFAULT_ARCH in demo:
        out["pointing_game_mean"] = demo[DEFAULT_ARCH]["mean_pointing_game"]
        out["pointing_game_min"] = demo[DEFAULT_ARCH]["min_pointing_game"]
    if "small" in demo:
        out["pointing_game_mean_small"] = demo["small"]["mean_pointing_game"]
        out["pointing_game_min_small"] = demo["small"]["min_pointing_game"]
    hard = figures.get("hard", {})
    if hard:
        out["f1_bad_hard_by_arch"] = {arch: r["min_f1_bad"] for arch, r in hard.items()}
        if DEFAULT_ARCH in hard:
            out["f1_bad_hard_min"] = hard[DEFAULT_ARCH]["min_f1_bad"]
    foreign = figures.get("foreign", {})
    if "small" in foreign:
        out["pointing_game_foreign_small"] = foreign["small"]["mean_pointing_game"]
        out["pointing_game_foreign_min_small"] = foreign["small"]["min_pointing_game"]
    out.update(figures.get("rss", {}))
    return out


def _size(value: str) -> tuple[int, int]:
    h, w = (int(x) for x in value.split("x"))
    return h, w


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--per-label", type=int, default=60, help="training images per label")
    parser.add_argument("--test-per-label", type=int, default=40, help="test images per label")
    parser.add_argument("--epochs", type=int, default=15, help="most epochs, small CNN")
    parser.add_argument("--inception-epochs", type=int, default=12)
    parser.add_argument("--inception-batch-size", type=int, default=8)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--input-size", type=_size, help="HxW for small (default its own)")
    parser.add_argument("--inception-size", type=_size, default=(139, 139), help="HxW")
    parser.add_argument("--label-noise", type=float, default=0.04, help="hard part, training")
    parser.add_argument("--rss-images", type=int, default=200, help="N of the RSS part")
    parser.add_argument("--rss-epochs", type=int, default=2)
    parser.add_argument("--plot-type", action="append", help="only these demo plot types")
    parser.add_argument("--archs", default=f"small,{DEFAULT_ARCH}", help="comma-separated")
    parser.add_argument("--all", action="store_true", help="also inceptionv3-cbam")
    parser.add_argument(
        "--merge", action="store_true", help="keep parts of the last results not run now"
    )
    parser.add_argument("--name", default="model_quality", help="results/<name>.json")
    args = parser.parse_args(argv)
    unknown = set(args.parts.split(",")) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parts asked for; return (and record) every figure."""
    parts = args.parts.split(",")
    archs = args.archs.split(",") + (["inceptionv3-cbam"] if args.all else [])
    previous = RESULTS / f"{args.name}.json"
    figures: dict[str, Any] = {}
    if args.merge and previous.is_file():
        old = json.loads(previous.read_text())
        figures = {k: v for k, v in old.items() if k in PARTS}
        # The kept parts were measured with the earlier runs' settings: keep those too.
        figures["config_earlier_runs"] = [*old.get("config_earlier_runs", []), old["config"]]
    config = {k: v for k, v in vars(args).items() if k not in ("all", "merge", "name")}
    figures["config"] = config | {"architectures": archs, "parts_run": parts}
    figures["devices"] = [d.device_type for d in tf.config.list_physical_devices()]
    started = time.perf_counter()
    demo = [s for s in hall_catalog("demo") if not args.plot_type or s.name in args.plot_type]
    sets: dict[str, tuple[list[PlotTypeSpec], list[str], Writer]] = {
        "demo": (demo, archs, _simulator(False, 0.0)),
        "hard": (demo, archs, _simulator(True, args.label_noise)),
    }
    if "foreign" in parts:
        from bench.foreign_plots import FOREIGN

        sets["foreign"] = (list(FOREIGN), ["small"], _foreign)
    for part in parts:
        if part == "rss":
            figures["rss"] = measure_rss(args.rss_images, args.rss_epochs)
        else:
            specs, part_archs, writer = sets[part]
            done = {a: evaluate_set(part, specs, a, args, writer) for a in part_archs}
            figures[part] = {**figures.get(part, {}), **done}  # --merge keeps other archs
        figures.update(headline(figures))
        figures["run_seconds"] = round(time.perf_counter() - started)
        record(args.name, figures)  # after every part: a long run keeps what it has
    return figures


def measure(quick: bool) -> dict[str, Any]:
    """``bench.run``'s entry: the top-level figures (quick: small only, fewer images)."""
    small = ["--archs", "small", "--per-label", "30", "--test-per-label", "20"]
    small += ["--rss-images", "100", "--name", "model_quality_quick"]
    figures = run(parse_args(small if quick else []))
    return headline(figures)


def main() -> None:
    """Run the benchmark and record its figures."""
    args = parse_args()
    figures = run(args)
    print(json.dumps(headline(figures), indent=2))
    print(f"figures written to {RESULTS / args.name}.json in {figures['run_seconds']} s")


if __name__ == "__main__":
    main()
