"""Synthetic BraTS-like MRI cases on real anatomy, for demos and tests that cannot ship BraTS data.

`generate_dataset` writes cases in a real BraTS raw layout (2020 or 2023 GLI naming and labels) so
that they also exercise the conversion; `synthesize_case` returns one case in memory. The anatomy is
the MNI152 template shipped with nilearn (its licence notice is in `template.py`).
"""

from nnunet_holder.synthetic.generate import SyntheticCase, generate_dataset, synthesize_case
from nnunet_holder.synthetic.writer import LAYOUT_NAMES

__all__ = ["LAYOUT_NAMES", "SyntheticCase", "generate_dataset", "synthesize_case"]
