"""Set-ups a missing-modality trainer refuses at `initialize`, each with the reason and the way out.

Every trainer of this package treats input channel i as modality i and a missing modality as a
channel that is zero after nnU-Net's preprocessing. A trainer that learns from modality subsets
needs at least two modalities (one channel has no subset but itself). Three nnU-Net set-ups break
the rest silently:
the cascade (its previous stage's one-hot masks are extra input channels, which would be taken
for modalities), BatchNorm plans (statistics shared by the modalities folded into one batch;
checked by `ModalityNorm` itself, here only for the earlier, clearer message) and a
normalisation scheme that does not map an all-zero channel to zero (CT normalisation subtracts a
dataset mean), so a zero-filled missing file would not look missing. The zero check runs nnU-Net's
own normalisation code on an all-zero case, so custom schemes are judged by what they do.
"""

from __future__ import annotations

import pydoc

import numpy as np
from torch.nn.modules.batchnorm import _BatchNorm


def refuse_unsupported_setup(trainer, uses_modality_norms: bool, needs_modalities: int = 1) -> None:
    """Raise NotImplementedError naming what is unsupported in this trainer's plans, and why.

    `needs_modalities`: the fewest input channels (modalities) the trainer can learn from.
    """
    name = type(trainer).__name__
    cm = trainer.configuration_manager
    channels = trainer.dataset_json["channel_names"]
    if len(channels) < needs_modalities:
        raise NotImplementedError(
            f"{name} needs at least {needs_modalities} modalities (input channels) to learn from their "
            f"subsets; dataset.json of {trainer.plans_manager.dataset_name} has {len(channels)} "
            f"({', '.join(channels.values())}): train nnU-Net's own nnUNetTrainer on it"
        )
    if trainer.is_cascaded:
        raise NotImplementedError(
            f"{name} does not support the cascade ({trainer.configuration_name} uses the "
            f"segmentations of {cm.previous_stage_name} as extra input channels, which would be "
            "taken for modalities); train 3d_fullres or 3d_lowres instead"
        )
    if uses_modality_norms:
        norm = cm.network_arch_init_kwargs.get("norm_op")
        norm_class = pydoc.locate(norm) if isinstance(norm, str) else norm
        if isinstance(norm_class, type) and issubclass(norm_class, _BatchNorm):
            raise NotImplementedError(
                f"{name} does not support BatchNorm plans ({norm}): batch statistics would mix the "
                "modalities folded into one batch; use plans with InstanceNorm (nnU-Net's default)"
            )
    zeros = np.zeros((len(channels), 2, 2, 2), dtype=np.float32)
    preprocessor = cm.preprocessor_class(verbose=False)
    normalized = preprocessor._normalize(
        zeros, np.zeros((1, 2, 2, 2), dtype=np.int8), cm,
        trainer.plans_manager.foreground_intensity_properties_per_channel,
    )
    not_zero = [c for c in range(len(channels)) if np.any(normalized[c])]
    if not_zero:
        listed = ", ".join(f"{c} ({channels[str(c)]}: {cm.normalization_schemes[c]})" for c in not_zero)
        raise NotImplementedError(
            f"{name} needs a normalisation that keeps an all-zero (missing) channel at zero; "
            f"channels {listed} do not. Plan these channels with a zero-preserving scheme "
            "(e.g. ZScoreNormalization: name them anything but 'CT' in dataset.json's channel_names)"
        )
