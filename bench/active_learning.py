"""Active learning: labels needed to reach F1(Bad) 0.9, random order ÷ suggested order.

A hall's stream is simulated on the hard simulator (``hydra_trainer.plots``, ``hard=True``)
for one plot type: runs of a few chunks, a problem persisting over most of a run's chunks
(so a run gives near-duplicates), problems at ``--bad-fraction``. The pool is what the keeper
kept and nobody has labelled yet; a separate test stream (other seed) measures F1(Bad).

Both orders start from the same ``--start`` random labels. Each round trains the small CNN
(``hydra_trainer.architectures.build_small``, at ``--size``, from scratch, ``--epochs``),
measures F1(Bad) on the test stream, and labels the next ``--step`` images of the pool:

- ``random``: drawn uniformly from the unlabelled pool (labelling in arrival order is
  random with respect to the model);
- ``suggested``: the Labeler's *Suggested* order, ``hydra_common.uncertainty.suggested_order``
  over the current model's margins (the same function the API uses), ``--per-run`` per run.

A curve stops at the first round whose F1(Bad) reaches ``--goal`` (the labels it took), or
at ``--max-labels``. ``labels_saved_ratio`` = mean labels random needed ÷ mean labels
suggested needed, over ``--seeds`` seeds (a curve that never reached the goal counts as
``--max-labels``, and ``random_reached_all`` says so: the ratio is then a lower bound).

    python -m bench.active_learning [--seeds 3] [--plot-type HTCC_adcEnergy]

Writes ``bench/results/active_learning.json``: the ratio, labels needed per seed and order,
and both learning curves (labels, F1(Bad)) per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from bench.results import RESULTS, record
from hydra_common.uncertainty import Candidate, margin, suggested_order
from hydra_trainer.architectures import build_small
from hydra_trainer.catalog import PlotTypeSpec, hall_catalog
from hydra_trainer.plots import make_plot
from hydra_trainer.simulate import choose_label

ORDERS = ("random", "suggested")


@dataclass
class Stream:
    """Simulated images (pixels at the bench's size), their true labels and runs."""

    pixels: np.ndarray
    labels: np.ndarray
    runs: np.ndarray


def simulate(
    spec: PlotTypeSpec, n: int, chunks: int, bad_fraction: float, size: tuple[int, int], seed: int
) -> Stream:
    """n hard-mode images, ``chunks`` per run; a run's problem shows in ~80 % of its chunks."""
    rng = np.random.default_rng(seed)
    h, w = size
    pixels, labels, runs = [], [], []
    run_label = "Good"
    for i in range(n):
        if i % chunks == 0:
            run_label = choose_label(spec, bad_fraction, rng)
        label = run_label if rng.random() < 0.8 else choose_label(spec, bad_fraction, rng)
        image, _ = make_plot(spec, label, rng, hard=True)
        small = image.convert("RGB").resize((w, h), resample=3)  # bicubic, antialiased
        pixels.append(np.asarray(small, dtype=np.float32))
        labels.append(spec.labels.index(label))
        runs.append(5000 + i // chunks)
    return Stream(np.stack(pixels), np.array(labels), np.array(runs))


def train(stream: Stream, chosen: np.ndarray, n_classes: int, epochs: int, seed: int) -> Any:
    """The small CNN fitted from scratch on the chosen images."""
    keras.utils.set_random_seed(seed)
    model = build_small(stream.pixels.shape[1:], n_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(stream.pixels[chosen], stream.labels[chosen], epochs=epochs, batch_size=16, verbose=0)
    return model


def f1(truth: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """F1 of class k."""
    tp = int(((truth == k) & (predicted == k)).sum())
    fp = int(((truth != k) & (predicted == k)).sum())
    fn = int(((truth == k) & (predicted != k)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def next_labels(
    order: str,
    model: Any,
    pool: Stream,
    labelled: np.ndarray,
    step: int,
    per_run: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The pool indices labelled next in this order."""
    todo = np.flatnonzero(~labelled)
    if order == "random":
        return rng.choice(todo, size=min(step, len(todo)), replace=False)
    weights = model.predict(pool.pixels[todo], batch_size=128, verbose=0)
    candidates = [
        Candidate(int(i), int(pool.runs[i]), margin(w.tolist()))
        for i, w in zip(todo, weights, strict=True)
    ]
    return np.array([c.key for c in suggested_order(candidates, per_run)[:step]])


def learning_curve(
    order: str, pool: Stream, test: Stream, spec: PlotTypeSpec, args: argparse.Namespace, seed: int
) -> tuple[list[list[float]], int | None]:
    """(labels, F1(Bad)) per round, and the labels needed to reach the goal (None: never)."""
    rng = np.random.default_rng(seed)
    labelled = np.zeros(len(pool.labels), dtype=bool)
    labelled[rng.choice(len(labelled), size=args.start, replace=False)] = True
    bad = spec.labels.index("Bad")
    curve: list[list[float]] = []
    while True:
        chosen = np.flatnonzero(labelled)
        model = train(pool, chosen, len(spec.labels), args.epochs, seed)
        predicted = np.argmax(model.predict(test.pixels, batch_size=128, verbose=0), axis=1)
        score = round(f1(test.labels, predicted, bad), 4)
        curve.append([int(labelled.sum()), score])
        print(f"seed {seed} {order:9s} labels {int(labelled.sum()):4d} F1(Bad) {score:.3f}")
        if score >= args.goal:
            return curve, int(labelled.sum())
        if labelled.sum() >= min(args.max_labels, len(labelled)):
            return curve, None
        labelled[next_labels(order, model, pool, labelled, args.step, args.per_run, rng)] = True


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every seed, both orders; the figures (also recorded)."""
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    spec = next(s for s in hall_catalog("demo") if s.name == args.plot_type)
    size = (args.size[0], args.size[1])
    started = time.perf_counter()
    seeds: dict[str, Any] = {}
    needed: dict[str, list[int]] = {order: [] for order in ORDERS}
    reached: dict[str, bool] = dict.fromkeys(ORDERS, True)
    for seed in range(args.seeds):
        pool = simulate(spec, args.pool, args.chunks, args.bad_fraction, size, 10 + seed)
        test = simulate(spec, args.test, args.chunks, args.bad_fraction, size, 1000 + seed)
        per_seed: dict[str, Any] = {
            "pool_bad": int((pool.labels == spec.labels.index("Bad")).sum())
        }
        for order in ORDERS:
            curve, labels = learning_curve(order, pool, test, spec, args, seed)
            per_seed[order] = {"curve": curve, "labels_needed": labels}
            reached[order] = reached[order] and labels is not None
            needed[order].append(labels if labels is not None else args.max_labels)
        seeds[str(seed)] = per_seed
    mean = {order: float(np.mean(v)) for order, v in needed.items()}
    config = {k: v for k, v in vars(args).items() if k != "name"}
    figures = {
        "labels_saved_ratio": round(mean["random"] / mean["suggested"], 3),
        "labels_needed_random_mean": round(mean["random"], 1),
        "labels_needed_suggested_mean": round(mean["suggested"], 1),
        "labels_needed": needed,
        "random_reached_all": reached["random"],
        "suggested_reached_all": reached["suggested"],
        "goal_f1_bad": args.goal,
        "uncertainty": "margin (top weight - runner-up), hydra_common.uncertainty",
        "seeds": seeds,
        "config": config | {"size": list(size)},
        "run_seconds": round(time.perf_counter() - started),
    }
    record(args.name, figures)
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--plot-type", default="HTCC_adcEnergy", help="a demo plot type")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=600, help="unlabelled kept images")
    parser.add_argument("--test", type=int, default=400, help="test images")
    parser.add_argument("--chunks", type=int, default=6, help="chunks per run")
    parser.add_argument("--bad-fraction", type=float, default=0.1, help="problems per image")
    parser.add_argument("--start", type=int, default=20, help="random labels to start with")
    parser.add_argument("--step", type=int, default=20, help="labels per round")
    parser.add_argument("--max-labels", type=int, default=400)
    parser.add_argument("--per-run", type=int, default=3, help="suggested order's diversity")
    parser.add_argument("--goal", type=float, default=0.9, help="F1(Bad) to reach")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow's CPU threads")
    parser.add_argument("--name", default="active_learning", help="results/<name>.json")
    return parser.parse_args(argv)


def measure(quick: bool) -> dict[str, Any]:
    """``bench.run``'s entry: the ratio (quick: one seed, a smaller pool)."""
    argv = ["--seeds", "1", "--pool", "300", "--name", "active_learning_quick"] if quick else []
    figures = run(parse_args(argv))
    return {"labels_saved_ratio": figures["labels_saved_ratio"]}


def main() -> None:
    """Run the benchmark and record its figures."""
    args = parse_args()
    figures = run(args)
    print(json.dumps({k: v for k, v in figures.items() if k not in ("seeds", "config")}, indent=2))
    print(f"figures written to {RESULTS / args.name}.json in {figures['run_seconds']} s")


if __name__ == "__main__":
    main()
