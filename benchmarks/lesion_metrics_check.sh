#!/usr/bin/env bash
# Cross-check of nnunet_holder.evaluate.lesion with the official BraTS lesion-wise code, each in a venv
# of its own under a git-ignored scratch folder (nothing of it becomes a dependency of the project).
#
#   benchmarks/lesion_metrics_check.sh [--cases N] [--write]
#
# LESION_CHECK_DIR        scratch folder (default build/lesion_metrics_check)
# BRATS2023_METRICS_SRC   a tree of rachitsaluja/BraTS-2023-Metrics at $REFERENCE_COMMIT (default: cloned
#                         from GitHub into the scratch folder)
# PYTHON310               Python 3.10 for the reference's pinned packages (default python3.10)
# PYTHON                  Python for the BraTS_evaluation venv (default python3); SKIP_BRATS_EVALUATION=1
#                         leaves that comparison out
set -euo pipefail
cd "$(dirname "$0")/.."
REFERENCE_COMMIT=43c905242b2eecf421d4ab2da7af8ece9777d322  # the commit the BraTS 2023 Synapse scoring pinned
work=${LESION_CHECK_DIR:-build/lesion_metrics_check}
mkdir -p "$work"
src=${BRATS2023_METRICS_SRC:-$work/BraTS-2023-Metrics}
if [ ! -f "$src/metrics.py" ]; then
  git clone -q https://github.com/rachitsaluja/BraTS-2023-Metrics "$src"
  git -C "$src" checkout -q "$REFERENCE_COMMIT"
fi
reference=$work/venv-brats2023
if [ ! -x "$reference/bin/python" ]; then
  # the versions of the BraTS 2023 scoring image (Sage-Bionetworks-Challenges/brats2023, evaluation/lesionwise)
  "${PYTHON310:-python3.10}" -m venv "$reference"
  "$reference/bin/pip" install -q connected-components-3d==3.12.1 nibabel==5.1.0 numpy==1.24.3 pandas==1.3.4 \
    scipy==1.11.1
fi
options=()
if [ "${SKIP_BRATS_EVALUATION:-0}" != 1 ]; then
  evaluation=$work/venv-brats-evaluation
  if [ ! -x "$evaluation/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$evaluation"
    "$evaluation/bin/pip" install -q BraTS_evaluation==0.0.10 panoptica==2.1.7
  fi
  options+=(--panoptica-python "$evaluation/bin/python")
fi
rm -rf "$work/run"
.venv/bin/python benchmarks/lesion_metrics_check.py --work "$work/run" --reference-python "$reference/bin/python" \
  --reference-src "$src" --reference-commit "$REFERENCE_COMMIT" --command "$0${*:+ $*}" "${options[@]}" "$@"
