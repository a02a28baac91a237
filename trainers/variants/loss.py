"""Loss ablations of the paper: without MI or HD (Table V), other divergences in place of the
Hölder term (Table IV), the Hölder exponent α (Table VIII); experiments/table*.sh train them."""

from nnunet_holder.trainers.holder_mi import HolderMITrainer


class HolderMITrainer_noMI(HolderMITrainer):
    """Table V: without the MI term."""

    lambda_mi = 0.0


class HolderMITrainer_noHD(HolderMITrainer):
    """Table V: without the Hölder term (Table VIII: no distillation)."""

    divergence = None


class HolderMITrainer_noMI_noHD(HolderMITrainer):
    """Table V: Dice only, on the modality-parallel network."""

    lambda_mi = 0.0
    divergence = None


class HolderMITrainer_KL(HolderMITrainer):
    """Table IV: Kullback-Leibler in place of the Hölder divergence."""

    divergence = "kl"


class HolderMITrainer_JS(HolderMITrainer):
    """Table IV: Jensen-Shannon in place of the Hölder divergence."""

    divergence = "js"


class HolderMITrainer_TV(HolderMITrainer):
    """Table IV: total variation in place of the Hölder divergence."""

    divergence = "tv"


class HolderMITrainer_Hellinger(HolderMITrainer):
    """Table IV: squared Hellinger in place of the Hölder divergence."""

    divergence = "hellinger"


class HolderMITrainer_NeymanChi2(HolderMITrainer):
    """Table IV: Neyman χ² in place of the Hölder divergence."""

    divergence = "neyman_chi2"


class HolderMITrainer_MSE(HolderMITrainer):
    """Table IV: mean squared error in place of the Hölder divergence."""

    divergence = "mse"


class HolderMITrainer_BCE(HolderMITrainer):
    """Table IV: binary cross-entropy in place of the Hölder divergence."""

    divergence = "bce"


class HolderMITrainer_alpha1p05(HolderMITrainer):
    """Table VIII: Hölder exponent α = 1.05."""

    alpha = 1.05


class HolderMITrainer_alpha1p08(HolderMITrainer):
    """Table VIII: Hölder exponent α = 1.08."""

    alpha = 1.08


class HolderMITrainer_alpha1p10(HolderMITrainer):
    """Table VIII: Hölder exponent α = 1.10 (HolderMITrainer's default, under the row's name)."""

    alpha = 1.10


class HolderMITrainer_alpha1p15(HolderMITrainer):
    """Table VIII: Hölder exponent α = 1.15."""

    alpha = 1.15


class HolderMITrainer_alpha1p20(HolderMITrainer):
    """Table VIII: Hölder exponent α = 1.20."""

    alpha = 1.20
