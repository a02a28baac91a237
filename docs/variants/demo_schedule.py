# Variants on the demo's schedule (100 x 20 on 3d_small of the 8 mm data, docs/demo_record.md).
from nnunet_holder.trainers import HolderMITrainer_inputFusion_availabilityChannels
from nnunet_holder.trainers.overrides import DEMO


class HolderMITrainer_inputFusion_availabilityChannels_demo(HolderMITrainer_inputFusion_availabilityChannels):
    overrides = DEMO
