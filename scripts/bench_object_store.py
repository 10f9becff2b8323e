"""How a dataset reaches the trials at scale: the put into Ray's object store and each trial's fetch, for
synthetic datasets of k times Fashion-MNIST's size (70,000 28x28 images as float32, as rtune holds them).

For each size: the time of ``ray.put`` (what ``tune.with_parameters`` does once per experiment), then
``--trials`` Ray tasks of one CPU each, as trials are, each timing its ``ray.get`` of the dataset and one pass
over every pixel (what the first epoch reads). Sizes above rtune's limit (``OBJECT_STORE_SHARE`` of the
object store) are reported as refused, with the message a search gets, and not put.

    python scripts/bench_object_store.py --multiples 1 10 100 --trials 4 --repeats 3 --image-folder 10000
    python scripts/bench_object_store.py --multiples 1 10 --trials 2 --repeats 3 --second-node
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray  # noqa: E402

from rtune_fashion.data import Dataset  # noqa: E402
from rtune_fashion.errors import ExperimentError  # noqa: E402
from rtune_fashion.experiment import OBJECT_STORE_SHARE, _check_data_fits_object_store, data_bytes  # noqa: E402

FASHION_EXAMPLES = 70_000


def synthetic(multiple: float, *, allocate: bool = True) -> Dataset:
    """k times Fashion-MNIST's examples, split 48/12/10 as it is; random pixels, or (``allocate`` False) arrays
    that only report their size, for the size check."""
    n = int(FASHION_EXAMPLES * multiple)
    train, val = int(n * 48 / 70), int(n * 12 / 70)
    if allocate:
        rng = np.random.default_rng(0)
        x, y = rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)
    else:
        x, y = np.broadcast_to(np.float32(0), (n, 28, 28, 1)), np.broadcast_to(np.int64(0), (n,))
    return Dataset(x[:train], y[:train], x[train:train + val], y[train:train + val], x[train + val:],
                   y[train + val:])  # fmt: skip


@ray.remote(num_cpus=1)
def fetch(refs: list) -> tuple[float, float]:
    """(seconds of ray.get, seconds of one pass over every pixel) in a worker, as a trial's start."""
    started = time.perf_counter()
    data = ray.get(refs[0])
    got = time.perf_counter()
    total = sum(float(a.sum()) for a in (data.x_train, data.x_val, data.x_test))
    assert total > 0
    return got - started, time.perf_counter() - got


def image_folder_figure(images: int, repeats: int) -> None:
    """Write ``images`` real Fashion-MNIST images as 48x48 PNGs in 4 class folders (article C's shape), then time
    what a search does with them before its first trial: read, check and split them (``--data FOLDER``), and
    put the dataset into the object store."""
    import tempfile

    from PIL import Image

    from rtune_fashion.data import load_raw
    from rtune_fashion.sources import DataSource

    pixels, labels, _, _ = load_raw()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for i in range(images):
            folder = root / f"class_{int(labels[i]) % 4}"
            folder.mkdir(exist_ok=True)
            Image.fromarray(pixels[i]).resize((48, 48)).save(folder / f"{i}.png")
        loads, puts = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            data = DataSource(str(root)).load()
            loads.append(time.perf_counter() - started)
            started = time.perf_counter()
            ref = ray.put(data)
            puts.append(time.perf_counter() - started)
            del ref
    print(f"An image folder of {images} 48x48 PNGs: read, checked and split in {statistics.median(loads):.2f} s, "
          f"put in {statistics.median(puts):.3f} s (medians of {repeats}; {data_bytes(data) / 1e6:.0f} MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--multiples", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--trials", type=int, default=4, help="tasks that fetch the dataset at once")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--object-store-gb", type=float, default=None, help="default: Ray's own choice")
    parser.add_argument("--image-folder", type=int, default=0, metavar="N",
                        help="also time an image folder of N 48x48 PNGs: read, checked, split and put")
    parser.add_argument("--second-node", action="store_true",
                        help="fetch on a second raylet of this machine (ray.cluster_utils.Cluster), as a cluster's "
                        "worker node does: the object manager copies the dataset to it over TCP")
    args = parser.parse_args(argv)
    store_bytes = int(args.object_store_gb * 1e9) if args.object_store_gb else None
    cluster = None
    if args.second_node:
        from ray.cluster_utils import Cluster

        store_bytes = store_bytes or int(3e9)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": store_bytes})
        cluster.add_node(num_cpus=args.trials, object_store_memory=store_bytes, resources={"worker": args.trials})
        ray.init(address=cluster.address, logging_level="ERROR")
    else:
        ray.init(include_dashboard=False, logging_level="ERROR",
                 **({"object_store_memory": store_bytes} if store_bytes else {}))  # fmt: skip
    remote_fetch = fetch.options(resources={"worker": 1}) if cluster else fetch
    store = min(n["Resources"]["object_store_memory"] for n in ray.nodes() if n["Alive"])
    print(f"Ray object store on this node: {store / 1e9:.2f} GB; rtune's limit ({OBJECT_STORE_SHARE:.0%}): "
          f"{OBJECT_STORE_SHARE * store / 1e9:.2f} GB = {OBJECT_STORE_SHARE * store / (FASHION_EXAMPLES * 3136):.1f}x "
          "Fashion-MNIST as float32", flush=True)  # fmt: skip
    print("| size | GB | put s | fetch s per trial | first pass s per trial |\n| --- | --- | --- | --- | --- |")
    for multiple in args.multiples:
        nbytes = int(FASHION_EXAMPLES * multiple) * (3136 + 8)
        if nbytes > OBJECT_STORE_SHARE * store:
            try:
                _check_data_fits_object_store(synthetic(multiple, allocate=False))
            except ExperimentError as error:
                print(f"| {multiple:g}x | {nbytes / 1e9:.2f} | refused: {str(error)[:160]}... | | |", flush=True)
            continue
        data = synthetic(multiple)
        assert data_bytes(data) == nbytes
        puts, gets, passes = [], [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            ref = ray.put(data)
            puts.append(time.perf_counter() - started)
            for got, passed in ray.get([remote_fetch.remote([ref]) for _ in range(args.trials)]):
                gets.append(got)
                passes.append(passed)
            del ref
            time.sleep(1 if cluster else 0)  # the second node frees its copy, so the next fetch copies again
        del data
        print(f"| {multiple:g}x | {nbytes / 1e9:.2f} | {statistics.median(puts):.2f} | "
              f"{statistics.median(gets):.3f} | {statistics.median(passes):.2f} |", flush=True)
    if args.image_folder:
        image_folder_figure(args.image_folder, args.repeats)
    ray.shutdown()
    if cluster:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
