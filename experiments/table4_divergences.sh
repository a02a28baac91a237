#!/usr/bin/env bash
# Table IV: the Hölder term against other divergences (BraTS 2018, split ABLATION_SPLIT, default 1).
# Every model is HolderMITrainer with only the divergence swapped (nnU-Net's SGD schedule for all);
# the table lists each region's mean Dice over the 15 subsets and their mean, like the paper's.
# Environment: BRATS2018_DIR, SPLITS_DIR, NUM_GPUS, ABLATION_SPLIT, and those of lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SPLIT="${ABLATION_SPLIT:-1}"
# row label (the paper's) and trainer, in the paper's row order
ROWS=(
    "Total Variation:HolderMITrainer_TV"
    "Squared Hellinger:HolderMITrainer_Hellinger"
    "Kullback-Leibler:HolderMITrainer_KL"
    "Neyman chi2:HolderMITrainer_NeymanChi2"
    "Jensen-Shannon:HolderMITrainer_JS"
    "MSE:HolderMITrainer_MSE"
    "BCE:HolderMITrainer_BCE"
    "Hölder:HolderMITrainer"
)

ablation_table table4_divergences regions "$SPLIT" "${ROWS[@]}"
