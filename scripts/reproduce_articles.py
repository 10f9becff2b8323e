"""Train the articles' fixed architectures with their settings on their split; write docs/results.md.

    .venv/bin/python scripts/reproduce_articles.py                     # all six, seed 0 (CPU: about an hour)
    .venv/bin/python scripts/reproduce_articles.py --seeds 0 1 2        # mean and spread over three seeds
    .venv/bin/python scripts/reproduce_articles.py --presets lenet vgg_like

Each architecture (a preset of ``rtune_fashion.models``) is trained from scratch on the 48,000 training
images for the article's epochs, validated on the 12,000 validation images after every epoch, and tested
once on the 10,000 test images at the end. The table gives the last epoch's training accuracy (as Keras
reports it, dropout on: the articles' "train"), the final validation and test accuracy, next to the
articles' numbers. Where an article does not say how many epochs it trained, the epochs of its own
search are used, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtune_fashion.quiet import import_keras  # noqa: E402

import_keras()  # without TensorFlow's start-up lines

import keras  # noqa: E402

from rtune_fashion.data import Dataset, load_fashion_mnist  # noqa: E402
from rtune_fashion.files import replace_section  # noqa: E402
from rtune_fashion.models import preset  # noqa: E402
from rtune_fashion.retrain import train_and_test  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "results.md"


@dataclass(frozen=True)
class ArticleResult:
    """What an article trained and reported for one architecture (``None``: not reported)."""

    article: str
    epochs: int
    epochs_stated: bool
    train: float | None
    val: float | None
    test: float | None


ARTICLE_RESULTS: dict[str, ArticleResult] = {
    "baseline_softmax": ArticleResult("A", 20, False, 0.8587, 0.8552, 0.8375),
    "hyperas_best_mlp": ArticleResult("A", 40, True, 0.9160, 0.9024, 0.8871),
    "lenet": ArticleResult("D", 15, False, 0.9321, 0.9091, None),
    "conv_pool_x3": ArticleResult("D", 15, False, 0.9321, 0.8989, None),
    "vgg_like": ArticleResult("D", 15, False, 0.9811, 0.9230, None),
    "hyperas_best_cnn": ArticleResult("D", 15, True, 0.9463, 0.9353, 0.9227),
}


def train_preset(name: str, data: Dataset, epochs: int, seed: int) -> dict[str, Any]:
    """Train one preset from scratch; its last-epoch train accuracy, final val and test accuracy, and time."""
    _, metrics = train_and_test(preset(name), data, epochs=epochs, seed=seed)
    return {"preset": name, "seed": seed, "epochs": epochs, "train": metrics["train_accuracy"],
            "val": metrics["val_accuracy"], "best_val": metrics["best_val_accuracy"],
            "test": metrics["test_accuracy"], "seconds": metrics["train_time_s"]}  # fmt: skip


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} ({len(values)} seeds)"


def _article(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def table(runs: list[dict[str, Any]]) -> str:
    lines = ["| architecture (preset) | article | epochs | train | val | test | article train / val / test | "
             "minutes per run |", "|" + " --- |" * 8]  # fmt: skip
    for name in dict.fromkeys(r["preset"] for r in runs):
        mine = [r for r in runs if r["preset"] == name]
        ref = ARTICLE_RESULTS[name]
        note = "" if ref.epochs_stated else " (not stated; its search's)"
        epochs = f"{mine[0]['epochs']}" + (note if mine[0]["epochs"] == ref.epochs else " (--epochs)")
        lines.append(f"| {name} | {ref.article} | {epochs} | {_cell([r['train'] for r in mine])} | "
                     f"{_cell([r['val'] for r in mine])} | {_cell([r['test'] for r in mine])} | "
                     f"{_article(ref.train)} / {_article(ref.val)} / {_article(ref.test)} | "
                     f"{statistics.median(r['seconds'] for r in mine) / 60:.1f} |")  # fmt: skip
    seeds = ", ".join(str(s) for s in sorted({r["seed"] for r in runs}))
    return "\n".join([f"Train: the last epoch's training accuracy (dropout on, as Keras reports it); val: after the "
                      f"last epoch; test: once, at the end. Seeds {seeds}; with several seeds a cell is the mean ± "
                      "the standard deviation. Batch size: the article's where it gives one, else rtune's "
                      "default of 128.", "", *lines])  # fmt: skip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=list(ARTICLE_RESULTS), default=list(ARTICLE_RESULTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, help="override every article's epochs (quick checks)")
    parser.add_argument("--train-size", type=int, help="a stratified subset (quick checks; default: all 48,000)")
    parser.add_argument("--val-size", type=int)
    parser.add_argument("--test-size", type=int)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", type=Path, help="default: results/reproduce/<time>.json")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--from-json", type=Path, nargs="+", metavar="JSON",
                        help="train nothing: write the table from these earlier runs' JSON files (merged)")
    args = parser.parse_args(argv)
    for name in ("epochs", "train_size", "val_size", "test_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python scripts/reproduce_articles.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.from_json:
        try:
            runs = [run for path in args.from_json for run in json.loads(path.read_text())]
        except (OSError, json.JSONDecodeError) as error:
            print(f"Cannot read the runs: {error}. Fix: give the JSON files this script wrote (--json).",
                  file=sys.stderr)  # fmt: skip
            return 2
        write_doc(args.doc, runs, f"Runs read from {', '.join(p.name for p in args.from_json)}.", command)
        return 0
    sizes = {"train": args.train_size, "val": args.val_size, "test": args.test_size}
    subset = {split: n for split, n in sizes.items() if n is not None} or None
    data = load_fashion_mnist(args.data_dir, subset=subset)
    json_path = args.json or Path("results/reproduce") / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for name in args.presets:
        for seed in args.seeds:
            runs.append(train_preset(name, data, args.epochs or ARTICLE_RESULTS[name].epochs, seed))
            print(json.dumps(runs[-1]), flush=True)
            json_path.write_text(json.dumps(runs, indent=2))  # after every run: nothing lost
    stamp = (f"Measured {time.strftime('%Y-%m-%d %H:%M')}, Keras {keras.__version__} on {keras.backend.backend()}, "
             f"{len(data.y_train)} training / {len(data.y_val)} validation / {len(data.y_test)} test images.")
    write_doc(args.doc, runs, stamp, command)
    print(f"Wrote {json_path} and {args.doc}")
    return 0


def write_doc(doc: Path, runs: list[dict[str, Any]], stamp: str, command: str) -> None:
    body = table(runs) + f"\n\nCommand: `{command}`"
    replace_section(doc, "articles", "The articles' architectures, retrained", f"{stamp}\n\n{body}",
                    new_file="# Results\n\nWritten by `scripts/reproduce_articles.py` and by hand from search runs.\n")
    print(body)


if __name__ == "__main__":
    raise SystemExit(main())
