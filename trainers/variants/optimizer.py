"""The paper's optimisation recipe: Adam, lr 8e-4, weight decay 1e-5, 600 epochs.

The paper does not name a learning-rate schedule; nnU-Net's poly decay is kept. The batch size
stays the plans' (the paper used 8 on two GPUs).
"""

import torch
from nnunet_holder.trainers.holder_mi import HolderMITrainer
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler


class HolderMITrainer_paper(HolderMITrainer):
    """The paper's optimiser (Tables II and III): Adam, lr 8e-4, weight decay 1e-5, 600 epochs."""

    overrides = {"initial_lr": 8e-4, "weight_decay": 1e-5, "num_epochs": 600}

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(
            self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay
        )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)
