"""The split by identity: the hash decides, small folders are topped up, too few fall back."""

import itertools

import pytest

from components.example_gen import identity_split
from components.example_gen.split_modes import SPLIT_BY_IDENTITY, SPLIT_BY_IMAGE


def people(n: int, images: int = 12, prefix: str = "person") -> dict[bytes, int]:
    return {f"{prefix}-{i}".encode(): images for i in range(n)}


def usable_in(split, counts, eval_side: bool) -> int:
    return sum(1 for n, c in counts.items() if c >= 2 and split.is_eval(n) == eval_side)


def test_on_large_folders_the_hash_alone_decides_as_tfx_does():
    counts = people(200)
    split = identity_split.plan(counts, 20, 100)
    assert split.by == SPLIT_BY_IDENTITY and split.note == ""
    hashed = {n for n in counts if identity_split.bucket(n, 100) < 20}
    assert split.eval_identities == hashed
    assert 25 <= len(hashed) <= 55  # About 20% of 200.


@pytest.mark.parametrize("n", range(4, 13))
@pytest.mark.parametrize("fraction", [5, 20, 50, 90])
def test_four_or_more_usable_identities_always_hold_out_two_and_train_on_two(n, fraction):
    for prefix in ("a", "b", "c", "d", "e"):  # Different names, different hashes.
        counts = people(n, prefix=prefix)
        split = identity_split.plan(counts, fraction, 100)
        assert split.by == SPLIT_BY_IDENTITY
        assert usable_in(split, counts, True) >= 2, (prefix, n, fraction)
        assert usable_in(split, counts, False) >= 2, (prefix, n, fraction)


def test_four_people_the_hash_sends_to_train_are_split_two_and_two():
    # Found by search: four names the hash alone sends to train, all but one.
    names = [f"p{i}".encode() for i in range(200)]
    train_only = [n for n in names if identity_split.bucket(n, 100) >= 20][:4]
    counts = dict.fromkeys(train_only, 12)
    split = identity_split.plan(counts, 20, 100)
    assert usable_in(split, counts, True) == 2 and usable_in(split, counts, False) == 2
    assert "moved" in split.note


def test_deterministic_and_stable_when_people_join():
    counts = people(30)
    first = identity_split.plan(counts, 20, 100)
    assert identity_split.plan(dict(reversed(list(counts.items()))), 20, 100) == first
    joined = {**counts, **people(10, prefix="newcomer")}
    later = identity_split.plan(joined, 20, 100)
    assert first.eval_identities <= later.eval_identities  # Nobody left eval.
    assert not (later.eval_identities - first.eval_identities) & set(counts)  # Nor joined it.


def test_small_folders_keep_the_hashed_eval_people_as_others_join():
    """Only the topped-up identities may move back once enough people hash into eval."""
    names = [f"q{i}".encode() for i in range(60)]
    counts = dict.fromkeys(names[:5], 10)
    small = identity_split.plan(counts, 20, 100)
    hashed = {n for n in counts if identity_split.bucket(n, 100) < 20}
    for extra in itertools.accumulate([[n] for n in names[5:]]):
        grown = identity_split.plan({**counts, **dict.fromkeys(extra, 10)}, 20, 100)
        assert hashed <= grown.eval_identities
        assert grown.eval_identities & set(counts) <= small.eval_identities | hashed


def test_too_few_usable_identities_fall_back_to_a_split_by_image_with_a_note():
    counts = {**people(3), b"single": 1, b"other-single": 1}
    split = identity_split.plan(counts, 20, 100)
    assert split.by == SPLIT_BY_IMAGE and not split.eval_identities
    assert split.note.startswith("split by image, not by identity: 3 identities have 2 or more")
