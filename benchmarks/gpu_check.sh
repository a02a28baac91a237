#!/usr/bin/env bash
# One prepared GPU check (CUDA training with AMP, torch.compile, prediction, timings) for a machine
# that has PyTorch with CUDA but not this project's other dependencies. Usage, from the repo root:
#   bash benchmarks/gpu_check.sh OUT_DIR [SECONDS]   (wheels for missing packages in .whl/, if any)
# Steps run in order of importance, each with its own time limit and log, all within SECONDS
# (default 540), so a slow step cannot hide the others' results.
set -uo pipefail
OUT=${1:?output folder}
BUDGET=${2:-540}
START=$(date +%s)
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
  # acvl_utils imports cc3d for morphology helpers that nnU-Net's cascade and post-processing use;
  # neither runs here, and the wheel does not fit the transfer limit
  python3 -c "import cc3d" 2>/dev/null || echo "" > /tmp/site/cc3d.py
fi
# the package layout of pyproject.toml, without needing a build backend on the machine
rm -rf /tmp/holder && mkdir -p /tmp/holder && cp -r nnunet_holder /tmp/holder/
for sub in architectures trainers conversion; do cp -r $sub /tmp/holder/nnunet_holder/$sub; done
export PYTHONPATH=/tmp/holder:$PWD:${PYTHONPATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, nnunetv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

W=/tmp/nnunet; mkdir -p $W
export nnUNet_raw=$W/raw nnUNet_preprocessed=$W/pre nnUNet_results=$W/res nnUNet_def_n_proc=8 nnUNet_n_proc_DA=8
export nnUNet_extTrainer=/tmp/holder/nnunet_holder/trainers/ext
step() { echo; echo "=== $(date +%T) [$(( $(date +%s) - START )) s] $1"; }
# timed LIMIT CMD...: run with min(LIMIT, what is left of the budget); skip when under 20 s are left
timed() {
  local limit=$1; shift
  local left=$(( BUDGET - ($(date +%s) - START) ))
  [ $left -lt $limit ] && limit=$left
  if [ $limit -lt 20 ]; then echo "--- skipped: budget spent"; return 1; fi
  local t0=$(date +%s.%N); timeout "$limit" "$@"; local rc=$?
  echo "--- rc=$rc wall=$(python3 -c "print(round($(date +%s.%N)-$t0,1))") s (limit $limit s)"
  return $rc
}
# from another folder: `python -m` puts the working directory first on sys.path, and the repo root's
# nnunet_holder/ lacks the subpackages that pyproject maps in from architectures/, trainers/, conversion/
holder() { (cd /tmp && timed "$1" python3 -m nnunet_holder.cli "${@:2}"); }
# SKIP="bench vanilla compile" leaves steps out (a second, shorter run)
want() { [[ " ${SKIP:-} " != *" $1 "* ]]; }

step "data: 24 training + 4 test cases, 96^3 at 1 mm"
python3 -c "
from pathlib import Path
from tests.helpers_nnunet import make_raw_dataset
make_raw_dataset(Path('$W/raw'), 601, num_train=24, num_test=4, shape=(96, 96, 96))
"
step "plan and preprocess"
timed 150 nnUNetv2_plan_and_preprocess -d 601 -c 3d_fullres -np 8 > $OUT/plan.log 2>&1
python3 -c "import json; c=json.load(open('$W/pre/Dataset601_Tiny/nnUNetPlans.json'))['configurations']['3d_fullres']; print('patch', c['patch_size'], 'batch', c['batch_size'])"

step "train HolderMITrainer_smoke on cuda (AMP: nnU-Net's default on CUDA), nnUNet_compile=false"
nnUNet_compile=false timed 150 nnUNetv2_train 601 3d_fullres 0 -tr HolderMITrainer_smoke > $OUT/train_holder.log 2>&1
grep -E "Epoch time|train_loss|train loss parts|Pseudo dice|Mean Validation Dice|Subset validation|Error|error" $OUT/train_holder.log | tail -16

want bench && step "benchmark: training step, HolderMITrainer (width 0.5, 1.0) vs nnUNetTrainer, patch 128^3, AMP" &&
timed 120 python3 benchmarks/train_step.py --device cuda > $OUT/bench_train_step.md 2>&1
tail -20 $OUT/bench_train_step.md

want vanilla && step "train nnUNetTrainer_smoke on cuda (vanilla baseline, same schedule)" &&
nnUNet_compile=false timed 100 nnUNetv2_train 601 3d_fullres 0 -tr nnUNetTrainer_smoke > $OUT/train_vanilla.log 2>&1
grep -E "Epoch time|train_loss|Mean Validation Dice|Error|error" $OUT/train_vanilla.log | tail -8

step "nnunet-holder predict (test cases without T1ce and FLAIR files) and evaluate-subsets, cuda"
python3 - <<'PY'
import shutil
from pathlib import Path
src, dst = Path("/tmp/nnunet/raw/Dataset601_Tiny/imagesTs"), Path("/tmp/nnunet/partial")
dst.mkdir(exist_ok=True)
for f in src.iterdir():
    if not f.name.endswith(("_0001.nii.gz", "_0003.nii.gz")):
        shutil.copy(f, dst / f.name)
PY
holder 60 predict -i $W/partial -o $OUT/partial_pred -d 601 -c 3d_fullres -f 0 -tr HolderMITrainer_smoke -device cuda | tail -3
for tr in HolderMITrainer_smoke $(want vanilla && echo nnUNetTrainer_smoke); do
  holder 60 evaluate-subsets -i $W/raw/Dataset601_Tiny/imagesTs -l $W/raw/Dataset601_Tiny/labelsTs \
    -o $OUT/eval_$tr -d 601 -c 3d_fullres -f 0 -tr $tr -device cuda > $OUT/eval_$tr.log 2>&1
  python3 -c "import json; t=json.load(open('$OUT/eval_$tr/timing.json')); print('$tr: all-subset predict s/case', [round(x['predict_seconds'],2) for x in t])"
done

want bench && step "benchmark: inference vs available modalities, one-pass all-subset evaluation" &&
timed 90 python3 benchmarks/inference.py --device cuda > $OUT/bench_inference.md 2>&1
tail -20 $OUT/bench_inference.md

want compile && step "train HolderMITrainer_smoke with torch.compile (nnUNet_compile=true), fold 1" &&
nnUNet_compile=true timed 200 nnUNetv2_train 601 3d_fullres 1 -tr HolderMITrainer_smoke > $OUT/train_compile.log 2>&1
grep -E "compile|Epoch time|train_loss|Mean Validation Dice|Error|error" $OUT/train_compile.log | tail -10
cp $W/res/Dataset601_Tiny/HolderMITrainer_smoke__nnUNetPlans__3d_fullres/fold_0/validation/subset_table.md $OUT/ 2>/dev/null
step "done"
