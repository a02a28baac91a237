#!/usr/bin/env bash
# Table III: BraTS 2020, all 15 modality subsets, the RFNet split (219 train / 50 val / 100 test).
# The same three models as Table II.
# Environment: BRATS2020_DIR, SPLITS_DIR, NUM_GPUS, and those of lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRAINERS=(HolderMITrainer_paper nnUNetTrainer nnUNetTrainerModalityDropout)

setup_environment
say "BraTS 2020, RFNet split"
prepare_brats2020
train_and_evaluate "$BRATS2020_ID" "$BRATS2020_NAME" "${TRAINERS[@]}"
compare table3_brats2020 "${TRAINERS[@]/#/$RESULTS_DIR/$BRATS2020_ID/}"
