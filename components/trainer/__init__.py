"""Trainer code: the siamese embedding network trained with triplet loss."""
