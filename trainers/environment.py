"""Integer settings of a training read from environment variables (`nnUNet_seed`,
`nnUNet_torch_threads`), the way nnU-Net reads `nnUNet_n_proc_DA`: unset or empty means "not set",
anything else must be an integer within its range, or the run stops with the variable named."""

from __future__ import annotations

import os


def int_from_environment(name: str, low: int, high: int | None = None) -> int | None:
    """The integer in variable `name`, in [low, high) (no upper bound for None); None where unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not an integer") from None
    if number < low or (high is not None and number >= high):
        bound = f"at least {low}" if high is None else f"in [{low}, {high})"
        raise SystemExit(f"{name}={number} must be {bound}")
    return number
