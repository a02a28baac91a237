"""Losses of the Hölder-divergence + mutual-information method, on nnU-Net's outputs and targets.

`HolderMILoss` is the training loss (Dice + λ2·divergence at every deep-supervision scale over
every modality subset, plus λ1·variational MI, optionally plus λ_kd·distillation from the full
set's prediction); its parts live in their own modules: the Hölder pseudo-divergence against
labels (`holder`), the divergence family of the paper's Table IV and its factory (`divergences`),
the proper Hölder divergence between soft predictions (`soft_holder`), and the variational MI term
with the regressor the network holds (`mi`).
All of them compute in float32 with autocast off, in log space where probabilities are involved.
"""

from nnunet_holder.losses.composite import HolderMILoss
from nnunet_holder.losses.divergences import (
    DIVERGENCES,
    BCELoss,
    HellingerLoss,
    JensenShannonLoss,
    KLDivergenceLoss,
    MSELoss,
    NeymanChi2Loss,
    TotalVariationLoss,
    VoxelDivergenceLoss,
    build_divergence,
)
from nnunet_holder.losses.holder import HolderDivergenceLoss, conjugate_exponent, holder_divergence
from nnunet_holder.losses.mi import MIRegressor, VariationalMILoss, mi_stage_weights
from nnunet_holder.losses.soft_holder import SoftHolderDivergenceLoss, proper_holder_divergence

__all__ = [
    "DIVERGENCES",
    "BCELoss",
    "HellingerLoss",
    "HolderDivergenceLoss",
    "HolderMILoss",
    "JensenShannonLoss",
    "KLDivergenceLoss",
    "MIRegressor",
    "MSELoss",
    "NeymanChi2Loss",
    "SoftHolderDivergenceLoss",
    "TotalVariationLoss",
    "VariationalMILoss",
    "VoxelDivergenceLoss",
    "build_divergence",
    "conjugate_exponent",
    "holder_divergence",
    "mi_stage_weights",
    "proper_holder_divergence",
]
