"""Re-exports every nnunet-holder trainer for nnU-Net's external-trainer lookup (do not add code here)."""

from nnunet_holder.trainers import *  # noqa: F401,F403 - the re-export is this module's purpose
