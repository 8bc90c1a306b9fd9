"""Model quality on the simulated demo hall: F1 of Bad and the Grad-CAM pointing game.

For each demo plot type a labelled training set and a separate test set are simulated
(different seeds); a model is fitted, exported as a SavedModel, and the test images go
through its ``explain`` signature, exactly as the predictor calls it. Figures per
architecture and plot type:

- ``f1_bad``: F1 of the Bad class on the test images (top label, no thresholds);
- ``pointing_game``: among Bad test images the model calls Bad (those the predictor asks a
  heat map for), the fraction whose heat-map peak lies inside the injected defect's box;
- ``pointing_all_bad``: the same over every Bad test image (the map of whatever label won).

    python -m bench.model_quality [--per-label 60] [--test-per-label 40] [--all]

``small`` always runs; ``--all`` adds ``inceptionv3`` and ``inceptionv3-cbam`` (slow on a
CPU: use ``--input-size 139x139`` or a GPU). Writes ``bench/results/model_quality.json``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from bench.results import record
from hydra_trainer.architectures import get_architecture
from hydra_trainer.catalog import PlotTypeSpec, hall_catalog
from hydra_trainer.dataset import LabelledImage, build_split_set, expand
from hydra_trainer.export import export_model
from hydra_trainer.importer import scan_tree
from hydra_trainer.render import HEIGHT, WIDTH
from hydra_trainer.simulate import read_truth, write_labelled_set
from hydra_trainer.train import TrainOptions, fit


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


def _peak_in_box(heatmap: np.ndarray, box: list[int]) -> bool:
    """Whether the heat map's peak, mapped to image pixels, lies inside the box."""
    h, w = heatmap.shape
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    px, py = (x + 0.5) * WIDTH / w, (y + 0.5) * HEIGHT / h
    x0, y0, x1, y1 = box
    return bool(x0 <= px < x1 and y0 <= py < y1)


def _f1(truth: np.ndarray, predicted: np.ndarray, k: int) -> float:
    tp = int(((truth == k) & (predicted == k)).sum())
    fp = int(((truth != k) & (predicted == k)).sum())
    fn = int(((truth == k) & (predicted != k)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def evaluate_plot_type(
    spec: PlotTypeSpec, arch_name: str, args: argparse.Namespace, work: Path, seed: int
) -> dict[str, Any]:
    """Train and test one architecture on one plot type."""
    labels = list(spec.labels)
    write_labelled_set(work / "train", spec, dict.fromkeys(labels, args.per_label), seed=seed)
    write_labelled_set(
        work / "test", spec, dict.fromkeys(labels, args.test_per_label), seed=seed + 1000
    )
    split = build_split_set(_items(work / "train"), "normal", 0.85, seed)
    arch = get_architecture(arch_name)
    h, w = args.input_size or arch.input_size
    options = TrainOptions(
        architecture=arch_name,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        patience=4,
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
    hits_called, n_called, hits_all, n_all = 0, 0, 0, 0
    for i, item in enumerate(test):
        info = read_truth(item.path)
        if item.label != "Bad" or info is None or not info.get("box"):
            continue
        inside = _peak_in_box(heatmaps[i], list(info["box"]))  # type: ignore[arg-type]
        n_all += 1
        hits_all += inside
        if predicted[i] == bad:
            n_called += 1
            hits_called += inside
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


def main() -> None:
    """Run the benchmark and record its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=60, help="training images per label")
    parser.add_argument("--test-per-label", type=int, default=40, help="test images per label")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--input-size", type=lambda v: tuple(int(x) for x in v.split("x")))
    parser.add_argument("--plot-type", action="append", help="only these plot types")
    parser.add_argument("--all", action="store_true", help="also inceptionv3, inceptionv3-cbam")
    args = parser.parse_args()
    archs = ["small"] + (["inceptionv3", "inceptionv3-cbam"] if args.all else [])
    specs = [s for s in hall_catalog("demo") if not args.plot_type or s.name in args.plot_type]
    figures: dict[str, Any] = {
        "config": {k: v for k, v in vars(args).items() if k != "all"} | {"architectures": archs},
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
    }
    for arch_name in archs:
        per_type: dict[str, Any] = {}
        for i, spec in enumerate(specs):
            with tempfile.TemporaryDirectory(prefix="hydra-mq-") as tmp:
                result = evaluate_plot_type(spec, arch_name, args, Path(tmp), seed=100 + i)
            per_type[spec.name] = result
            print(
                f"{arch_name:18s} {spec.name:20s} F1(Bad) {result['f1_bad']:.3f} "
                f"pointing {result['pointing_game']} (all Bad: {result['pointing_all_bad']}) "
                f"epochs {result['epochs_run']} train {result['train_seconds']} s",
                flush=True,
            )
        f1s = [r["f1_bad"] for r in per_type.values()]
        points = [r["pointing_game"] for r in per_type.values() if r["pointing_game"] is not None]
        figures[arch_name] = {
            "plot_types": per_type,
            "mean_f1_bad": round(float(np.mean(f1s)), 4),
            "min_f1_bad": round(float(np.min(f1s)), 4),
            "mean_pointing_game": round(float(np.mean(points)), 4) if points else None,
        }
        print(
            f"{arch_name}: mean F1(Bad) {figures[arch_name]['mean_f1_bad']}, "
            f"min {figures[arch_name]['min_f1_bad']}, "
            f"mean pointing game {figures[arch_name]['mean_pointing_game']}",
            flush=True,
        )
    path = record("model_quality", figures)
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
