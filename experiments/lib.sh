# shellcheck shell=bash
# Shared steps of the paper-reproduction scripts (sourced by table*.sh; see experiments/README.md).
#
# Every step prints the command it runs ("+ ...") and skips work that is already done (a converted
# dataset, a preprocessed configuration, a final checkpoint, an evaluation), so a table script can be
# rerun after an interruption and models shared between tables are trained once. A training that
# stopped midway is resumed with nnU-Net's --c. DRY_RUN=1 only prints the commands.
#
# Environment: nnUNet_raw, nnUNet_preprocessed, nnUNet_results (nnU-Net's own), NUM_GPUS (1),
# SPLITS_DIR (the repository's sibling shared/reference/splits), RESULTS_DIR (results), DEVICE
# (cuda, for the evaluation), POSTPROCESS_ET (500, RFNet's ET rule), PYTHON (python), DRY_RUN (0).

EXPERIMENTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$EXPERIMENTS_DIR")"
NUM_GPUS="${NUM_GPUS:-1}"
SPLITS_DIR="${SPLITS_DIR:-$REPO_DIR/../shared/reference/splits}"
if [[ -d "$SPLITS_DIR" ]]; then SPLITS_DIR="$(cd "$SPLITS_DIR" && pwd)"; fi
RESULTS_DIR="${RESULTS_DIR:-results}"
DEVICE="${DEVICE:-cuda}"
POSTPROCESS_ET="${POSTPROCESS_ET:-500}"
PYTHON="${PYTHON:-python}"
DRY_RUN="${DRY_RUN:-0}"
CONFIGURATION=3d_fullres
FOLD=0  # convert-brats writes a one-fold splits_final.json: fold 0 = the split's train/val cases
PLANS=nnUNetPlans

say() { echo "== $*"; }
die() { echo "error: $*" >&2; exit 1; }

# Print a command (arguments with spaces or shell characters in single quotes), then run it unless DRY_RUN=1.
run() {
    local arg line="+" plain='^[A-Za-z0-9_./:=,+@%$-]+$'
    for arg in "$@"; do
        if [[ "$arg" =~ $plain ]]; then line+=" $arg"; else line+=" '${arg//\'/\'\\\'\'}'"; fi
    done
    echo "$line"
    if [[ "$DRY_RUN" != 1 ]]; then "$@"; fi
}

# nnU-Net's three folders must be set; a dry run shows them as placeholders.
setup_environment() {
    local var
    for var in nnUNet_raw nnUNet_preprocessed nnUNet_results; do
        if [[ -z "${!var:-}" ]]; then
            [[ "$DRY_RUN" == 1 ]] || die "set $var (nnU-Net's folders, see its documentation/setting_up_paths.md)"
            printf -v "$var" '%s' "\$$var"
            export "${var?}"
        fi
    done
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "+ export nnUNet_extTrainer=\$(nnunet-holder trainer-path)"
    else
        nnUNet_extTrainer="$(nnunet-holder trainer-path)"
        export nnUNet_extTrainer
        echo "+ export nnUNet_extTrainer=$nnUNet_extTrainer"
    fi
}

require_dir() {  # require_dir VARIABLE_NAME DESCRIPTION
    local value="${!1:-}"
    [[ "$DRY_RUN" == 1 || -d "$value" ]] || die "$1 must be $2 (got '${value}')"
    return 0
}

dataset_folder() { echo "Dataset$(printf '%03d' "$1")_$2"; }  # dataset_folder ID NAME

# convert ID NAME BRATS_DIR SPLIT_DIR [SPLIT]: BraTS raw folder -> nnU-Net raw dataset with the split's
# test cases in imagesTs/labelsTs and its train/val cases as fold 0 of splits_final.json.
convert() {
    local id="$1" name="$2" input="$3" split_dir="$4" split="${5:-}"
    local target
    target="$nnUNet_raw/$(dataset_folder "$id" "$name")"
    if [[ "$DRY_RUN" != 1 && -d "$target" ]]; then
        say "$target exists, not converting again"
        return 0
    fi
    run nnunet-holder convert-brats "$input" -d "$id" -n "$name" --split-dir "$split_dir" ${split:+--split "$split"}
}

# plan ID NAME: nnU-Net's fingerprint, plans and 3d_fullres preprocessing; keeps the split file.
plan() {
    local id="$1" name="$2"
    local folder pre
    folder="$(dataset_folder "$id" "$name")"
    pre="$nnUNet_preprocessed/$folder"
    if [[ "$DRY_RUN" != 1 && -d "$pre/${PLANS}_$CONFIGURATION" ]]; then
        say "$pre/${PLANS}_$CONFIGURATION exists, not preprocessing again"
    else
        run nnUNetv2_plan_and_preprocess -d "$id" -c "$CONFIGURATION" --verify_dataset_integrity
    fi
    # convert-brats writes splits_final.json straight into nnUNet_preprocessed when that is set, else
    # into the raw dataset; without it nnU-Net would make its own 5-fold split
    if [[ "$DRY_RUN" == 1 || ! -f "$pre/splits_final.json" ]]; then
        run cp "$nnUNet_raw/$folder/splits_final.json" "$pre/splits_final.json"
    fi
}

# train ID NAME TRAINER: fold 0 on NUM_GPUS GPUs; resumes a stopped run, skips a finished one.
train() {
    local id="$1" name="$2" trainer="$3"
    local fold_dir
    fold_dir="$nnUNet_results/$(dataset_folder "$id" "$name")/${trainer}__${PLANS}__$CONFIGURATION/fold_$FOLD"
    if [[ "$DRY_RUN" != 1 && -f "$fold_dir/checkpoint_final.pth" ]]; then
        say "$trainer on dataset $id is trained ($fold_dir), skipping"
        return 0
    fi
    local resume=()
    if [[ "$DRY_RUN" != 1 && -f "$fold_dir/checkpoint_latest.pth" ]]; then resume=(--c); fi
    run nnUNetv2_train "$id" "$CONFIGURATION" "$FOLD" -tr "$trainer" -num_gpus "$NUM_GPUS" "${resume[@]}"
}

# evaluate ID NAME TRAINER: every modality subset on the split's test cases -> RESULTS_DIR/ID/TRAINER.
evaluate() {
    local id="$1" name="$2" trainer="$3"
    local raw out
    raw="$nnUNet_raw/$(dataset_folder "$id" "$name")"
    out="$RESULTS_DIR/$id/$trainer"
    if [[ "$DRY_RUN" != 1 && -f "$out/subset_table.json" ]]; then
        say "$out/subset_table.json exists, skipping the evaluation"
        return 0
    fi
    run nnunet-holder evaluate-subsets -i "$raw/imagesTs" -l "$raw/labelsTs" -o "$out" \
        -d "$id" -c "$CONFIGURATION" -f "$FOLD" -tr "$trainer" --postprocess-et "$POSTPROCESS_ET" -device "$DEVICE"
}

# train_and_evaluate ID NAME TRAINER...
train_and_evaluate() {
    local id="$1" name="$2" trainer
    shift 2
    for trainer in "$@"; do
        say "dataset $id: $trainer"
        train "$id" "$name" "$trainer"
        evaluate "$id" "$name" "$trainer"
    done
}

# ablation_table OUTPUT_STEM LAYOUT SPLIT "LABEL:TRAINER"...: one BraTS 2018 split, every row's model
# trained and evaluated, then the rows gathered into one table (Tables IV, V and VIII).
ablation_table() {
    local stem="$1" layout="$2" split="$3" id row
    shift 3
    setup_environment
    prepare_brats2018 "$split"
    id="$(brats2018_id "$split")"
    local tables=()
    for row in "$@"; do
        train_and_evaluate "$id" "$(brats2018_name "$split")" "${row#*:}"
        tables+=("${row%%:*}=$RESULTS_DIR/$id/${row#*:}")
    done
    compare "$stem" --layout "$layout" "${tables[@]}"
}

# compare OUTPUT_STEM COMPARE_ARGS...: the gathered table (Markdown printed, STEM.md + STEM.csv written).
compare() {
    local stem="$1"
    shift
    run "$PYTHON" "$EXPERIMENTS_DIR/compare.py" "$@" -o "$RESULTS_DIR/$stem"
}

# The datasets: BraTS 2018 with the U-HVED/RFNet splits 1-3 (one dataset id per split) and BraTS 2020
# with the RFNet split. Ids are nnU-Net dataset ids; change them if yours are taken.
read -r -a BRATS2018_IDS <<< "${BRATS2018_IDS:-137 138 139}"
BRATS2020_ID="${BRATS2020_ID:-140}"

brats2018_id() { echo "${BRATS2018_IDS[$(($1 - 1))]}"; }  # brats2018_id SPLIT
brats2018_name() { echo "BraTS2018split$1"; }
BRATS2020_NAME=BraTS2020

# prepare_brats2018 SPLIT: convert (test cases of the split held out) and preprocess.
prepare_brats2018() {
    local split="$1"
    require_dir BRATS2018_DIR "the BraTS 2018 training folder (MICCAI_BraTS_2018_Data_Training, HGG/ and LGG/)"
    require_dir SPLITS_DIR "the folder with brats2018_uhved/ and brats2020/ split lists"
    convert "$(brats2018_id "$split")" "$(brats2018_name "$split")" "${BRATS2018_DIR:-\$BRATS2018_DIR}" \
        "$SPLITS_DIR/brats2018_uhved" "$split"
    plan "$(brats2018_id "$split")" "$(brats2018_name "$split")"
}

prepare_brats2020() {
    require_dir BRATS2020_DIR "the BraTS 2020 training folder (MICCAI_BraTS2020_TrainingData)"
    require_dir SPLITS_DIR "the folder with brats2018_uhved/ and brats2020/ split lists"
    convert "$BRATS2020_ID" "$BRATS2020_NAME" "${BRATS2020_DIR:-\$BRATS2020_DIR}" "$SPLITS_DIR/brats2020"
    plan "$BRATS2020_ID" "$BRATS2020_NAME"
}
