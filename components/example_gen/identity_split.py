"""Which identities the split by identity sends to eval: a hash, topped up on small folders.

The rule, deterministic and stable as people are added:
  1. Each identity is hashed as TFX's ExampleGen hashes a partition feature (SHA-256 of the
     name, modulo the split's hash buckets); one whose bucket falls in the eval share goes to
     eval. That share is --eval-fraction of the buckets, so on large folders about that share
     of the people, and an identity keeps its side when others join.
  2. Only identities with 2 or more images can be evaluated (a query needs a match) or
     trained on (an anchor needs a positive): call them usable. When fewer than
     MIN_EVAL_IDENTITIES usable identities hashed into eval, the usable train identities
     nearest the eval share (lowest bucket, then hash) move to eval until there are enough;
     when fewer than MIN_TRAIN_IDENTITIES usable ones are left in train, the eval identities
     nearest the train share (highest bucket) move back. With 4 usable identities or more both hold.
  3. With fewer than 4 usable identities no identity can be held out: the split falls back to
     one by image (each example hashed, as --split-by image does), with a note.
Adding a person changes at most the identities moved in step 2, and only on folders small
enough to need it. Pure Python: the ExampleGen executor applies it to the counts it reads.
"""

import dataclasses
import hashlib

from components.example_gen.split_modes import SPLIT_BY_IDENTITY, SPLIT_BY_IMAGE

MIN_EVAL_IDENTITIES = 2  # Retrieval and verification need 2 identities with 2+ images.
MIN_TRAIN_IDENTITIES = 2  # Triplets need 2 identities with 2+ images.
MIN_USABLE = MIN_EVAL_IDENTITIES + MIN_TRAIN_IDENTITIES
# What ExampleGen did, as custom properties of its Examples artifact (for the run summary).
SPLIT_BY_PROPERTY = "split_by"
SPLIT_NOTE_PROPERTY = "split_note"


def bucket(identity: bytes, total_buckets: int) -> int:
    """The hash bucket TFX's ExampleGen gives a partition feature value (its _PartitionFn)."""
    return int(hashlib.sha256(identity).hexdigest(), 16) % total_buckets


@dataclasses.dataclass(frozen=True)
class IdentitySplit:
    by: str  # SPLIT_BY_IDENTITY, or SPLIT_BY_IMAGE when too few identities can be held out
    eval_identities: frozenset  # by identity: the names (bytes) sent to eval
    note: str  # "" unless the hash alone could not be used: what was done and why

    def is_eval(self, identity: bytes) -> bool:
        return identity in self.eval_identities


def plan(counts: dict[bytes, int], eval_buckets: int, total_buckets: int) -> IdentitySplit:
    """The eval identities for images per identity `counts` (see the module docstring)."""
    usable = sorted(name for name, count in counts.items() if count >= 2)
    if len(usable) < MIN_USABLE:
        return IdentitySplit(
            SPLIT_BY_IMAGE,
            frozenset(),
            f"split by image, not by identity: {len(usable)} identities have 2 or more "
            f"images, and holding {MIN_EVAL_IDENTITIES} out for evaluation needs "
            f"{MIN_USABLE} (eval holds new images of the training identities: closed-set)",
        )

    def rank(name: bytes):
        return bucket(name, total_buckets), hashlib.sha256(name).digest()

    in_eval = {name for name in counts if bucket(name, total_buckets) < eval_buckets}
    usable_eval = sorted((n for n in usable if n in in_eval), key=rank)
    usable_train = sorted((n for n in usable if n not in in_eval), key=rank)
    moved = []
    while len(usable_eval) < MIN_EVAL_IDENTITIES:
        name = usable_train.pop(0)
        usable_eval.append(name)
        in_eval.add(name)
        moved.append(f"{name.decode(errors='replace')} to eval")
    while len(usable_train) < MIN_TRAIN_IDENTITIES:
        name = usable_eval.pop()
        usable_train.insert(0, name)
        in_eval.discard(name)
        moved.append(f"{name.decode(errors='replace')} to train")
    note = ""
    if moved:
        note = (
            f"{len(usable_eval)} of {len(usable)} identities with 2+ images held out for "
            f"evaluation (the hash alone gave too few on one side; moved {', '.join(moved)})"
        )
    return IdentitySplit(SPLIT_BY_IDENTITY, frozenset(in_eval), note)
