"""BraTS <-> nnU-Net conversion: raw BraTS folders (2018-2024 layouts) to nnU-Net raw datasets, and back.

`convert_brats` detects the layout, remaps labels to nnU-Net's nested regions (WT/TC/ET), applies
published split lists and reports every per-case problem; `to_brats` maps predictions back to BraTS
labels. The command-line forms are `nnunet-holder convert-brats` and `nnunet-holder to-brats`.
"""

from nnunet_holder.conversion.back_conversion import to_brats
from nnunet_holder.conversion.convert import convert_brats, dataset_folder_name
from nnunet_holder.conversion.labels import brats_to_nnunet, nnunet_to_brats
from nnunet_holder.conversion.layouts import LAYOUTS, MODALITIES, LayoutError, discover
from nnunet_holder.conversion.problems import ConversionError, Problem
from nnunet_holder.conversion.report import ConversionResult
from nnunet_holder.conversion.splits import read_split_dir

__all__ = [
    "LAYOUTS",
    "MODALITIES",
    "ConversionError",
    "ConversionResult",
    "LayoutError",
    "Problem",
    "brats_to_nnunet",
    "convert_brats",
    "dataset_folder_name",
    "discover",
    "nnunet_to_brats",
    "read_split_dir",
    "to_brats",
]
