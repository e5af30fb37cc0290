"""Radiomics engine: read dual-phase CT and masks, preprocess, extract PyRadiomics features in
batch (local processes or Dask), and filter features by inter/intra-observer ICC.

Entry points: :func:`extract_manifest` (manifest -> feature table + log + settings) and
:func:`icc_filter` (two observers' tables -> reproducible features).
"""
from .batch import PHASES, ExtractionResult, extract_manifest, read_manifest
from .extract import (FEATURE_CLASSES, RadiomicsSettings, count_components, extract_case, extract_files,
                      largest_component)
from .io import (
    EmptyMaskError,
    GeometryMismatchError,
    ImagingInputError,
    LabelNotFoundError,
    MaskOutsideImageError,
    check_geometry,
    deidentify_dataset,
    dicom_series_to_nifti,
    load_case,
    read_image,
    read_mask,
)
from .preprocess import crop_and_resample, normalize_intensity
from .reproducibility import ICCFilterResult, icc_filter, icc_table, perturb_mask, summarise_icc

__all__ = [
    "PHASES", "ExtractionResult", "extract_manifest", "read_manifest",
    "FEATURE_CLASSES", "RadiomicsSettings", "count_components", "extract_case", "extract_files",
    "largest_component",
    "EmptyMaskError", "GeometryMismatchError", "ImagingInputError", "LabelNotFoundError",
    "MaskOutsideImageError", "check_geometry", "deidentify_dataset", "dicom_series_to_nifti",
    "load_case", "read_image", "read_mask",
    "crop_and_resample", "normalize_intensity",
    "ICCFilterResult", "icc_filter", "icc_table", "perturb_mask", "summarise_icc",
]
