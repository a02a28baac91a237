"""Which synthetic cases lack which modalities: the incomplete training data of a clinical archive.

A fraction of the cases (all but the last `keep_complete`, the test cases of `convert-brats
--num-test`) miss one or two modalities, T1ce most often (contrast agent withheld), the others
equally often; their files are simply not written, as in a real incomplete archive. The plan comes
from a generator of its own, so the images of every case are the same with or without it.
"""

from __future__ import annotations

import numpy as np

DROP_WEIGHTS: dict[str, float] = {"T1": 0.2, "T1ce": 0.4, "T2": 0.2, "FLAIR": 0.2}
"""How often each modality is the one missing (per drawn modality), in the generator's contrast names."""

_PLAN_STREAM = 2**31 - 1  # the plan's generator key, apart from every case index


def drop_plan(
    num_cases: int, fraction: float, seed: int, keep_complete: int = 0
) -> dict[int, tuple[str, ...]]:
    """{case index: modalities it lacks} for round(fraction × candidates) cases among the first
    `num_cases - keep_complete`, each lacking one or two modalities (even odds) drawn by `DROP_WEIGHTS`."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"the fraction of incomplete cases must be in [0, 1], got {fraction}")
    if not 0 <= keep_complete <= num_cases:
        raise ValueError(f"keep_complete must be in [0, {num_cases}], got {keep_complete}")
    candidates = num_cases - keep_complete
    rng = np.random.default_rng([seed, _PLAN_STREAM])
    chosen = sorted(rng.permutation(candidates)[: round(fraction * candidates)].tolist())
    names = list(DROP_WEIGHTS)
    weights = np.array([DROP_WEIGHTS[n] for n in names])
    plan = {}
    for index in chosen:
        count = int(rng.integers(1, 3))
        drawn = rng.choice(len(names), size=count, replace=False, p=weights / weights.sum())
        plan[index] = tuple(names[i] for i in sorted(drawn))
    return plan
