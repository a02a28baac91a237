#!/usr/bin/env bash
# Table V: ablation of the parallel network (PNF), the MI term and the Hölder term (BraTS 2018,
# split ABLATION_SPLIT, default 1): mean Dice over the subsets with 3, 2, 1, 0 missing modalities.
# "No PNF, Dice" is vanilla nnU-Net (its loss is Dice + BCE, not Dice alone); the other rows are
# HolderMITrainer with terms switched off (nnU-Net's SGD schedule for all).
# Environment: BRATS2018_DIR, SPLITS_DIR, NUM_GPUS, ABLATION_SPLIT, and those of lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SPLIT="${ABLATION_SPLIT:-1}"
ROWS=(
    "no PNF, Dice (nnU-Net):nnUNetTrainer"
    "PNF, Dice:HolderMITrainer_noMI_noHD"
    "PNF, Dice + MI:HolderMITrainer_noHD"
    "PNF, Dice + HD:HolderMITrainer_noMI"
    "PNF, Dice + MI + HD:HolderMITrainer"
)

ablation_table table5_ablation missing "$SPLIT" "${ROWS[@]}"
