"""Loss ablations of the paper: without MI or HD (Table V), other divergences in place of the
Hölder term (Table IV), the Hölder exponent α (Table VIII); experiments/table*.sh train them."""

from nnunet_holder.trainers.holder_mi import HolderMITrainer


class HolderMITrainer_noMI(HolderMITrainer):
    lambda_mi = 0.0


class HolderMITrainer_noHD(HolderMITrainer):
    divergence = None


class HolderMITrainer_noMI_noHD(HolderMITrainer):
    lambda_mi = 0.0
    divergence = None


class HolderMITrainer_KL(HolderMITrainer):
    divergence = "kl"


class HolderMITrainer_JS(HolderMITrainer):
    divergence = "js"


class HolderMITrainer_TV(HolderMITrainer):
    divergence = "tv"


class HolderMITrainer_Hellinger(HolderMITrainer):
    divergence = "hellinger"


class HolderMITrainer_NeymanChi2(HolderMITrainer):
    divergence = "neyman_chi2"


class HolderMITrainer_MSE(HolderMITrainer):
    divergence = "mse"


class HolderMITrainer_BCE(HolderMITrainer):
    divergence = "bce"


class HolderMITrainer_alpha1p05(HolderMITrainer):
    alpha = 1.05


class HolderMITrainer_alpha1p08(HolderMITrainer):
    alpha = 1.08


class HolderMITrainer_alpha1p10(HolderMITrainer):
    alpha = 1.10


class HolderMITrainer_alpha1p15(HolderMITrainer):
    alpha = 1.15


class HolderMITrainer_alpha1p20(HolderMITrainer):
    alpha = 1.20
