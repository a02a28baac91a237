"""nnunet-holder: missing-modality brain-tumour segmentation for nnU-Net v2."""
