"""Partial-modality prediction on top of nnU-Net's predictor."""
