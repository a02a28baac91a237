#!/usr/bin/env bash
# Table VIII: the Hölder exponent α (BraTS 2018, split ABLATION_SPLIT, default 1), with the rows
# "no distillation" (no Hölder term) and KL of the paper. α = 1.10 is HolderMITrainer's default, so
# that row reuses the HolderMITrainer model of Tables IV and V (HolderMITrainer_alpha1p10 is the same).
# Environment: BRATS2018_DIR, SPLITS_DIR, NUM_GPUS, ABLATION_SPLIT, and those of lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SPLIT="${ABLATION_SPLIT:-1}"
ROWS=(
    "no distillation:HolderMITrainer_noHD"
    "KL:HolderMITrainer_KL"
    "Hölder alpha 1.05:HolderMITrainer_alpha1p05"
    "Hölder alpha 1.08:HolderMITrainer_alpha1p08"
    "Hölder alpha 1.10:HolderMITrainer"
    "Hölder alpha 1.15:HolderMITrainer_alpha1p15"
    "Hölder alpha 1.20:HolderMITrainer_alpha1p20"
)

ablation_table table8_alpha regions "$SPLIT" "${ROWS[@]}"
