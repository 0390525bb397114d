"""How `identify` grows with its gallery: latency, load time, memory, size, via TF Serving's loader.

Takes a served version (default: the newest under runs/default/serving_model, as `make run`
leaves it), exports it again with galleries of N random unit-norm entries (the served
embedding size, names like `person-0000001`), loads each with TensorFlow's C++ loader
(benchmarks.tf_serving_loader, the call TF Serving makes) and prints, per N: the version's size
on disk, load time, resident memory after load, and `identify` milliseconds per request at
batch 1 and 32 (median and 95th percentile of --repeats Session::Run calls, after a warm-up).

    python -m benchmarks.gallery_benchmark [--model DIR] [--sizes 10000 100000 1000000]
"""

import argparse
import os
import tempfile

import numpy as np

DEFAULT_SERVING_DIR = os.path.join("runs", "default", "serving_model")


def directory_size(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )


def random_gallery(size: int, dimensions: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(size, dimensions)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings, np.array([f"person-{i:07d}" for i in range(size)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a served version (default: newest under runs/default)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from benchmarks import tf_serving_loader
    from benchmarks.triplet_benchmark import cpu_name
    from components.baseline.served_baseline import newest_version
    from components.example_gen import digits
    from components.serving import export, gallery, gallery_ledger

    model = args.model or newest_version(DEFAULT_SERVING_DIR)
    if not model:
        raise SystemExit(f"no served version under {DEFAULT_SERVING_DIR}: run `make run` first")
    calibration = export.read_calibration(model)
    dimensions = gallery_ledger.version_gallery(model)[0].shape[1]
    with tempfile.TemporaryDirectory() as scratch:
        records = list(gallery.dataset_records(digits.materialize(os.path.join(scratch, "d"))))
        queries = {1: records[:1], 32: records[:32]}
        binary = tf_serving_loader.build()
        print(f"CPU: {cpu_name()} ({os.cpu_count()} cores); TensorFlow {tf.__version__}")
        print(f"model: {model} (embedding size {dimensions}, top_k {calibration['top_k']})")
        header = "entries     size MB  export s  load s  RSS MB  batch 1 ms (p50/p95)"
        print(header + "  batch 32 ms (p50/p95)")
        for size in args.sizes:
            version = os.path.join(scratch, str(size))
            entries = random_gallery(size, dimensions)
            facts = {**calibration, "gallery_size": size, "gallery_identities": size}
            started = tf.timestamp().numpy()
            export.export_with_gallery(model, version, entries, facts)
            export_s = tf.timestamp().numpy() - started
            with tf_serving_loader.ServingLoader(version, binary) as loaded:
                timings = {}
                for batch, examples in queries.items():
                    loaded.call_timed("identify", {"examples": examples}, repeat=3)  # Warm-up.
                    _, ms = loaded.call_timed(
                        "identify", {"examples": examples}, repeat=args.repeats
                    )
                    timings[batch] = np.percentile(ms, [50, 95])
                print(
                    f"{size:>9,}  {directory_size(version) / 2**20:>8.1f}  {export_s:>8.1f}  "
                    f"{loaded.load_ms / 1000:>6.1f}  {loaded.rss_kb / 1024:>6.0f}  "
                    f"{timings[1][0]:>10.1f} / {timings[1][1]:<8.1f}  "
                    f"{timings[32][0]:>10.1f} / {timings[32][1]:.1f}",
                    flush=True,
                )
            tf.io.gfile.rmtree(version)


if __name__ == "__main__":
    main()
