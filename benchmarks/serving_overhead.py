"""Wall time of the ServingModel step (calibration + gallery + export) at a dataset's scale.

Writes an IDX dataset (e.g. Fashion-MNIST: 60,000 train, 10,000 eval) as an Examples artifact
(gzipped Split-train / Split-eval TFRecords, as ExampleGen does), then times
components.serving.component.write_serving_model with the Trainer model and Evaluator output of a
finished run (the step's cost depends on the image counts, not on the weights). Compare with the
pipeline's wall time: the budget is 15%.

    python -m benchmarks.serving_overhead --run runs/default \
        --data /usr/share/datasets/fashion-mnist --work /tmp/serving_overhead
"""

import argparse
import glob
import os
import time

import tensorflow as tf

from components.example_gen import idx, readers, sources
from components.serving import component
from components.serving.settings import ServingSettings


def write_examples(data: str, examples_uri: str) -> dict[str, int]:
    counts = {}
    for split in sources.input_config(sources.IDX).splits:
        paths = sorted(glob.glob(os.path.join(data, split.pattern)))
        images_path, labels_path = readers.idx_pair(paths, split.pattern)
        total = readers.check_idx_pair(images_path, labels_path)
        folder = os.path.join(examples_uri, f"Split-{split.name}")
        os.makedirs(folder, exist_ok=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(os.path.join(folder, "data.gz"), options) as writer:
            for chunk in idx.chunks(total, readers.IDX_CHUNK):
                for example in readers.idx_chunk_to_examples(chunk, images_path, labels_path):
                    writer.write(example.SerializeToString())
        counts[split.name] = total
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="output dir of a finished, blessed run")
    parser.add_argument("--data", required=True, help="an MNIST-format IDX folder")
    parser.add_argument("--work", required=True, help="scratch folder")
    args = parser.parse_args()
    (trained,) = glob.glob(os.path.join(args.run, "tfx", "Trainer", "model", "*", "Format-Serving"))
    evaluations = glob.glob(os.path.join(args.run, "tfx", "Evaluator", "evaluation", "*"))
    examples_uri = os.path.join(args.work, "examples")
    if not os.path.isdir(examples_uri):
        print("examples per split:", write_examples(args.data, examples_uri))
    started = time.monotonic()
    facts = component.write_serving_model(
        trained,
        examples_uri,
        max(evaluations, key=os.path.getmtime),
        os.path.join(args.work, "served", str(int(time.time()))),
        ServingSettings(),
    )
    print(f"ServingModel step: {time.monotonic() - started:.1f} s, gallery {facts['gallery_size']}")


if __name__ == "__main__":
    main()
