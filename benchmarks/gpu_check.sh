#!/usr/bin/env bash
# One prepared GPU check (CUDA training with AMP, torch.compile, prediction, timings) for a machine
# that has PyTorch with CUDA but not this project's other dependencies. Usage, from the repo root:
#   bash benchmarks/gpu_check.sh OUT_DIR        (wheels for missing packages in .whl/, if any)
# Every step has its own time limit and log, so a slow step does not hide the others' results.
set -uo pipefail
OUT=${1:?output folder}
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
export nnUNet_raw=$W/raw nnUNet_preprocessed=$W/pre nnUNet_results=$W/res nnUNet_def_n_proc=8
export nnUNet_extTrainer=$(python3 -c "from nnunet_holder.trainer_path import trainer_path; print(trainer_path())")
step() { echo; echo "=== $(date +%T) $1"; }
timed() { local t0=$(date +%s.%N); timeout "$@"; local rc=$?; echo "--- rc=$rc wall=$(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"; }

step "data: 24 training + 4 test cases, 96^3 at 1 mm (nnU-Net plans a 96^3 patch)"
python3 -c "
from pathlib import Path
from tests.helpers_nnunet import make_raw_dataset
make_raw_dataset(Path('$W/raw'), 601, num_train=24, num_test=4, shape=(96, 96, 96))
"
step "plan and preprocess"
timed 240 nnUNetv2_plan_and_preprocess -d 601 -c 3d_fullres -np 8 > $OUT/plan.log 2>&1
grep -E "patch_size|batch_size" $W/pre/Dataset601_Tiny/nnUNetPlans.json | head -3

for tr in HolderMITrainer_smoke nnUNetTrainer_smoke; do
  step "train $tr on cuda (AMP is nnU-Net's default on CUDA), nnUNet_compile=false"
  nnUNet_compile=false timed 240 nnUNetv2_train 601 3d_fullres 0 -tr $tr > $OUT/train_$tr.log 2>&1
  grep -E "Epoch time|train_loss|Pseudo dice|Mean Validation Dice|Subset validation|Error|error" $OUT/train_$tr.log | tail -14
done

step "train HolderMITrainer_smoke with torch.compile (nnUNet_compile=true), fold 1"
nnUNet_compile=true timed 300 nnUNetv2_train 601 3d_fullres 1 -tr HolderMITrainer_smoke > $OUT/train_compile.log 2>&1
grep -E "compile|Epoch time|train_loss|Mean Validation Dice|Error|error" $OUT/train_compile.log | tail -10

step "nnunet-holder predict (cases missing T1ce and FLAIR) and evaluate-subsets on cuda"
python3 - <<'PY'
import shutil
from pathlib import Path
src = Path("/tmp/nnunet/raw/Dataset601_Tiny/imagesTs"); dst = Path("/tmp/nnunet/partial"); dst.mkdir()
for f in src.iterdir():
    if not (f.name.endswith("_0001.nii.gz") or f.name.endswith("_0003.nii.gz")):
        shutil.copy(f, dst / f.name)
PY
timed 120 python3 -m nnunet_holder.cli predict -i $W/partial -o $OUT/partial_pred -d 601 -c 3d_fullres -f 0 -tr HolderMITrainer_smoke -device cuda
for tr in HolderMITrainer_smoke nnUNetTrainer_smoke; do
  timed 180 python3 -m nnunet_holder.cli evaluate-subsets -i $W/raw/Dataset601_Tiny/imagesTs -l $W/raw/Dataset601_Tiny/labelsTs \
    -o $OUT/eval_$tr -d 601 -c 3d_fullres -f 0 -tr $tr -device cuda > $OUT/eval_$tr.log 2>&1
  python3 -c "import json; t=json.load(open('$OUT/eval_$tr/timing.json')); print('$tr predict s/case:', [round(x['predict_seconds'],2) for x in t])"
done
