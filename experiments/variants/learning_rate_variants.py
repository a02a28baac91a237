"""Learning-rate probes on the demo's scale (docs/records/demo_record.md).

Whether a faster schedule gets the demo's 200 epochs to the 800-epoch level: nnU-Net's initial
learning rate (0.01) doubled, tried on modality dropout only (it did not help). The runs were
trained as `..._demoLr2`, renamed because a name ending in a number means epochs here.
"""

from nnunet_holder.trainers import nnUNetTrainerModalityDropout_demo


class nnUNetTrainerModalityDropout_lr0p02_demo(nnUNetTrainerModalityDropout_demo):
    overrides = {"initial_lr": 0.02}
