"""The folder for nnU-Net's `nnUNet_extTrainer` (printed by `nnunet-holder trainer-path`).

nnU-Net imports each module here as a top-level module; the only one re-exports our trainers
through absolute imports, so each class keeps a single identity (pickling, isinstance).
"""
