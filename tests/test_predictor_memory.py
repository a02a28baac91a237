"""The predictor's memory on a failed pass and for the all-subset accumulator, on the CPU.

nnU-Net retries a sliding-window pass with its results in CPU memory from inside its
`except RuntimeError` (an out-of-memory error is one). Here the first attempt's device-side step
raises once (an out-of-memory stand-in: there is no GPU to fill) and the retry is inspected while
it runs. The network is HolderMITrainer's, built from the tiny dataset's real plans.
"""

from __future__ import annotations

import json
import math
import sys
import weakref
from pathlib import Path

import pytest
import torch
from nnunet_holder.trainers import HolderMITrainer
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnunet_holder.predict.predictor import HolderPredictor
from nnunet_holder.subsets import all_subsets


class FailsOnce(HolderPredictor):
    """The device-side step of a tile raises RuntimeError once, at the second tile of a pass."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tiles_done = 0
        self.failed_tile: weakref.ref | None = None
        self.at_retry: dict | None = None

    def _internal_maybe_mirror_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        if self.failed_tile is None:
            if self.tiles_done == 1:
                self.failed_tile = weakref.ref(x)
                raise RuntimeError("CUDA out of memory (forced)")
            self.tiles_done += 1
        return super()._internal_maybe_mirror_and_predict(x)

    def _internal_predict_sliding_window_return_logits(self, data, slicers, do_on_device: bool = True):
        if not do_on_device:  # nnU-Net's retry: its `except RuntimeError` is handling the failure
            handler = sys.exc_info()[2]
            below = []  # the failed pass's frames, below nnU-Net's handling one (which keeps the input)
            tb = handler.tb_next
            while tb is not None:
                below.append(tb.tb_frame)
                tb = tb.tb_next
            self.at_retry = {
                "tensors held": [
                    f"{frame.f_code.co_name}: {name}"
                    for frame in below
                    for name, value in frame.f_locals.items()
                    if _holds_tensor(value, besides=data)
                ],
                "failed tile alive": self.failed_tile() is not None,
                "frames": [frame.f_code.co_name for frame in below],
            }
            del handler, tb, below
        return super()._internal_predict_sliding_window_return_logits(data, slicers, do_on_device)


def _holds_tensor(value, besides: torch.Tensor) -> bool:
    """A tensor other than `besides`, or a call's arguments holding one (torch's decorators keep
    `args` and `kwargs`). `besides` is the pass's input, which nnU-Net keeps for the retry."""
    if isinstance(value, dict):
        value = tuple(value.values())
    values = value if isinstance(value, (tuple, list)) else (value,)
    return any(isinstance(v, torch.Tensor) and v is not besides for v in values)


@pytest.fixture(scope="module")
def planned(tiny_dataset) -> tuple:
    folder = Path(tiny_dataset["env"]["nnUNet_preprocessed"]) / tiny_dataset["name"]
    plans = PlansManager(str(folder / "nnUNetPlans.json"))
    return plans, plans.get_configuration("3d_fullres"), json.loads((folder / "dataset.json").read_text())


def _predictor(planned: tuple, cls: type = HolderPredictor, seed: int = 0) -> HolderPredictor:
    plans, config, dataset_json = planned
    torch.manual_seed(seed)
    net = HolderMITrainer.build_network_architecture(plans, config, 4, 3, enable_deep_supervision=False)
    net.eval()
    predictor = cls(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.manual_initialization(net, plans, config, None, dataset_json, "HolderMITrainer", None)
    return predictor


def _case(planned: tuple) -> torch.Tensor:
    """A preprocessed-like case of two tiles, T1ce missing."""
    torch.manual_seed(1)
    first, *others = planned[1].patch_size
    data = torch.randn(4, first + first // 2, *others)
    data[1] = 0
    return data


@pytest.mark.parametrize("what", ["available modalities", "every subset"])
def test_a_failed_pass_lets_its_tensors_go_before_the_retry(planned, what: str) -> None:
    data = _case(planned)
    normal, failing = _predictor(planned), _predictor(planned, FailsOnce)
    failing.perform_everything_on_device = True  # nnU-Net's try-then-CPU route (its test: device != 'cpu')
    if what == "every subset":
        expected = normal.predict_subset_logits(data, all_subsets(4))
        retried = failing.predict_subset_logits(data, all_subsets(4))
    else:
        expected = normal.predict_logits_from_preprocessed_data(data)
        retried = failing.predict_logits_from_preprocessed_data(data)
    report = failing.at_retry
    assert report is not None, "the forced failure did not lead to nnU-Net's retry"
    # ours (the accumulators, the tile), then the failed step (the tile), with torch's decorators between
    assert {"_internal_predict_sliding_window_return_logits", "_internal_maybe_mirror_and_predict"} <= set(
        report["frames"]
    ), report["frames"]
    assert report["tensors held"] == [] and not report["failed tile alive"], report
    assert torch.equal(retried, expected)


def test_subsets_are_split_into_passes_where_their_accumulator_is_bounded(planned) -> None:
    data = _case(planned)
    predictor = _predictor(planned)
    folds = [_predictor(planned, seed=seed).network.state_dict() for seed in (0, 2)]
    predictor.list_of_parameters = folds  # two folds, each its own tensors as loaded from checkpoints
    whole = predictor.predict_subset_logits(data, all_subsets(4))

    heads = predictor.label_manager.num_segmentation_heads
    predictor.subset_accumulator_bytes = 4 * heads * math.prod(data.shape[1:]) * 4  # 4 subsets, float32
    passes = []
    sliding_window = predictor._internal_predict_sliding_window_return_logits

    def counted(pass_data, slicers, do_on_device=True):
        passes.append(predictor._subsets.shape[0])
        return sliding_window(pass_data, slicers, do_on_device)

    predictor._internal_predict_sliding_window_return_logits = counted
    grouped = predictor.predict_subset_logits(data, all_subsets(4))
    assert passes == [4, 4, 4, 3] * 2  # per fold
    assert (grouped - whole).abs().max().item() < 1e-5
    assert whole.abs().max().item() > 1e-2
