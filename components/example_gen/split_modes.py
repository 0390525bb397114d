"""How folder and TFRecord data is split into train and eval (light: the CLI imports it).

* image: each example is hashed, so eval holds new images of identities also in train
  (closed-set evaluation);
* identity: the identity name is hashed, so all images of an identity land in one split and
  eval identities never appear in train: the Evaluator then measures verification and
  retrieval of people the model has never seen (open-set evaluation).
"""

SPLIT_BY_IMAGE = "image"
SPLIT_BY_IDENTITY = "identity"
SPLIT_BY = (SPLIT_BY_IMAGE, SPLIT_BY_IDENTITY)
