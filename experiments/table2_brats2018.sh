#!/usr/bin/env bash
# Table II: BraTS 2018, all 15 modality subsets, U-HVED/RFNet splits 1-3.
# HolderMITrainer_paper (the paper's Adam 8e-4, 600 epochs) and the two baselines a user would pick
# instead (vanilla nnU-Net with zero-filled missing channels, nnU-Net with modality dropout), each
# trained on the split's train/val cases and evaluated on its 57 test cases, then one table per split
# and the mean over the splits.
# Environment: BRATS2018_DIR, SPLITS_DIR, NUM_GPUS, SPLITS ("1 2 3"), and those of lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TRAINERS=(HolderMITrainer_paper nnUNetTrainer nnUNetTrainerModalityDropout)
read -r -a SPLITS <<< "${SPLITS:-1 2 3}"

setup_environment
for split in "${SPLITS[@]}"; do
    say "BraTS 2018, split $split"
    prepare_brats2018 "$split"
    id="$(brats2018_id "$split")"
    train_and_evaluate "$id" "$(brats2018_name "$split")" "${TRAINERS[@]}"
    compare "table2_brats2018_split$split" "${TRAINERS[@]/#/$RESULTS_DIR/$id/}"
done

say "Table II: mean over splits ${SPLITS[*]}"
tables=()
for split in "${SPLITS[@]}"; do
    tables+=("${TRAINERS[@]/#/$RESULTS_DIR/$(brats2018_id "$split")/}")
done
compare table2_brats2018_mean --average "${tables[@]}"
