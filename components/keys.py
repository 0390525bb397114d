"""The names every stage agrees on: tf.Example features, serving signatures, their inputs and
outputs. A name that crosses a module boundary is written here once.

The raw tf.Example (ExampleGen's output, what a client sends): IMAGE (PNG or JPEG bytes) and
LABEL (the identity name). The served SavedModel's signatures and their tensors:

  serving_default(examples) -> embedding
  verify(examples_a, examples_b) -> distance, same, threshold
  identify(examples) -> identities, distances, known
"""

# Features of the raw tf.Example.
IMAGE = "image"
LABEL = "label"

# Signatures of the served model.
SERVING_DEFAULT = "serving_default"
VERIFY = "verify"
IDENTIFY = "identify"
SIGNATURES = (SERVING_DEFAULT, VERIFY, IDENTIFY)

# Their inputs: 1-D string tensors of serialized tf.Example.
EXAMPLES = "examples"
EXAMPLES_A, EXAMPLES_B = "examples_a", "examples_b"

# Files of the served model beside the graph: the calibration facts (threshold, FAR, gallery,
# pixel limit) in assets.extra/, which TF Serving copies but never loads.
ASSETS_EXTRA = "assets.extra"
CALIBRATION_FILE = "calibration.json"

# Their outputs.
EMBEDDING = "embedding"
DISTANCE, SAME, THRESHOLD = "distance", "same", "threshold"
IDENTITIES, DISTANCES, KNOWN = "identities", "distances", "known"
