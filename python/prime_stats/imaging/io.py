"""Reading CT volumes and tumour masks, geometry checks and DICOM de-identification.

Images: a DICOM series (a folder), NIfTI (``.nii``/``.nii.gz``), NRRD (``.nrrd``/``.nhdr``) or any
other single file SimpleITK reads. Masks: NIfTI/NRRD label maps or a DICOM Segmentation object
(``Modality = SEG``), which is placed on the grid of its reference image.

Every error names the file it is about, so that a batch log says which case to fix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

__all__ = [
    "ImagingInputError",
    "GeometryMismatchError",
    "EmptyMaskError",
    "MaskOutsideImageError",
    "LabelNotFoundError",
    "read_image",
    "read_mask",
    "load_case",
    "check_geometry",
    "deidentify_dataset",
    "dicom_series_to_nifti",
    "PS315_BASIC_PROFILE",
]


class ImagingInputError(ValueError):
    """An image or mask that cannot be used; the message names the file."""


class GeometryMismatchError(ImagingInputError):
    """Image and mask grids differ by more than the tolerance."""


class EmptyMaskError(ImagingInputError):
    """The mask has no voxel with the requested label."""


class MaskOutsideImageError(ImagingInputError):
    """The labelled region lies entirely outside the image's physical extent."""


class LabelNotFoundError(ImagingInputError):
    """A multi-label mask does not contain the requested label."""


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def read_image(path: str | Path, series_uid: str | None = None) -> sitk.Image:
    """Read a CT volume: a DICOM series folder or a single image file (NIfTI, NRRD, ...).

    A folder holding several DICOM series needs ``series_uid``; the error lists the series found.
    """
    path = Path(path)
    if not path.exists():
        raise ImagingInputError(f"image file not found: {path}")
    if path.is_dir():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
        if not ids:
            raise ImagingInputError(f"no DICOM series in folder {path}")
        if series_uid is None:
            if len(ids) > 1:
                raise ImagingInputError(
                    f"folder {path} holds {len(ids)} DICOM series ({', '.join(ids)}); give series_uid")
            series_uid = ids[0]
        elif series_uid not in ids:
            raise ImagingInputError(f"series {series_uid} not in folder {path} (found {', '.join(ids)})")
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series_uid)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        try:
            return reader.Execute()
        except RuntimeError as exc:
            raise ImagingInputError(f"cannot read DICOM series {series_uid} in {path}: {exc}") from exc
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ImagingInputError(f"cannot read image {path}: {exc}") from exc


def _seg_to_label_map(path: Path, reference: sitk.Image, segment: int) -> sitk.Image:
    """Place segment ``segment`` of a DICOM SEG file onto the reference image grid."""
    import pydicom

    ds = pydicom.dcmread(str(path))
    frames = np.asarray(ds.pixel_array)
    if frames.ndim == 2:
        frames = frames[None]
    out = np.zeros(sitk.GetArrayViewFromImage(reference).shape, dtype=np.uint8)
    numbers = [int(s.SegmentNumber) for s in ds.SegmentSequence]
    if segment not in numbers:
        raise LabelNotFoundError(f"segment {segment} not in DICOM SEG {path} (segments present: {numbers}); set `label`")
    shared = ds.SharedFunctionalGroupsSequence[0]
    orient = np.asarray(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float) \
        if "PlaneOrientationSequence" in shared else None
    spacing = np.asarray(shared.PixelMeasuresSequence[0].PixelSpacing, float)  # row, column spacing
    ref_dir = np.asarray(reference.GetDirection()).reshape(3, 3)
    if orient is not None and not np.allclose(orient, np.r_[ref_dir[:, 0], ref_dir[:, 1]], atol=1e-3):
        raise GeometryMismatchError(f"DICOM SEG {path}: plane orientation {orient.tolist()} differs from the image's")
    if not np.allclose(spacing[::-1], reference.GetSpacing()[:2], rtol=1e-3):
        raise GeometryMismatchError(
            f"DICOM SEG {path}: pixel spacing {spacing.tolist()} differs from the image's {reference.GetSpacing()[:2]}")
    if frames.shape[1:] != out.shape[1:]:
        raise GeometryMismatchError(f"DICOM SEG {path}: frame size {frames.shape[1:]} differs from the image's {out.shape[1:]}")
    for i, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        if int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber) != segment:
            continue
        pos = [float(v) for v in fg.PlanePositionSequence[0].ImagePositionPatient]
        idx = np.asarray(reference.TransformPhysicalPointToContinuousIndex(pos))
        k = int(round(idx[2]))
        if not (np.allclose(idx[:2], 0, atol=1e-2) and abs(idx[2] - k) < 1e-2 and 0 <= k < out.shape[0]):
            raise GeometryMismatchError(
                f"DICOM SEG {path}: frame {i + 1} at {pos} does not fall on a slice of the reference image")
        out[k] |= (frames[i] > 0).astype(np.uint8)
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(reference)
    return img


def read_mask(path: str | Path, reference: sitk.Image | None = None, label: int = 1) -> sitk.Image:
    """Read a tumour mask as a binary (0/1, UInt8) image of voxels equal to ``label``.

    NIfTI/NRRD label maps are read with SimpleITK; a DICOM SEG (needs ``reference``, its source
    image) is rasterised onto the reference grid. Errors: missing file, label absent from a
    multi-label mask (naming the labels present), empty mask.
    """
    path = Path(path)
    if not path.exists():
        raise ImagingInputError(f"mask file not found: {path}")
    if path.is_file() and _is_dicom_file(path):
        import pydicom

        modality = pydicom.dcmread(str(path), stop_before_pixels=True).get("Modality")
        if modality == "SEG":
            if reference is None:
                raise ImagingInputError(f"DICOM SEG mask {path} needs its reference image")
            return _seg_to_label_map(path, reference, label)
    raw = read_image(path)
    if raw.GetNumberOfComponentsPerPixel() != 1:
        raise ImagingInputError(f"mask {path} has {raw.GetNumberOfComponentsPerPixel()} components per voxel")
    arr = sitk.GetArrayViewFromImage(raw)
    present = np.unique(arr)
    nonzero = [v.item() for v in present if v != 0]
    if not nonzero:
        raise EmptyMaskError(f"mask {path} is empty (all voxels are 0)")
    if label not in nonzero:
        raise LabelNotFoundError(f"label {label} not in mask {path} (labels present: {nonzero}); set `label`")
    binary = sitk.Cast(raw == label, sitk.sitkUInt8)
    binary.CopyInformation(raw)
    return binary


def _extent_corners(img: sitk.Image, index_box: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    lo, hi = index_box
    corners = [[(lo if b == 0 else hi)[d] for d, b in enumerate(bits)]
               for bits in np.ndindex(2, 2, 2)]
    return np.array([img.TransformContinuousIndexToPhysicalPoint([float(c) for c in cor]) for cor in corners])


def check_geometry(image: sitk.Image, mask: sitk.Image, tolerance: float = 1e-3,
                   image_path: str | Path = "image", mask_path: str | Path = "mask") -> sitk.Image:
    """Check that ``mask`` lies on ``image``'s grid and return it on exactly that grid.

    * identical size and spacing/origin/direction equal within ``tolerance`` (relative for spacing,
      in units of voxel spacing for origin, absolute for direction cosines): the mask is
      resampled onto the image grid by nearest neighbour, which removes header rounding
      differences without moving any voxel (documented behaviour);
    * labelled region entirely outside the image's physical extent: :class:`MaskOutsideImageError`;
    * any larger difference: :class:`GeometryMismatchError` naming both files and the attribute.
    """
    arr = sitk.GetArrayViewFromImage(mask)
    nz = np.argwhere(arr > 0)
    if nz.size == 0:
        raise EmptyMaskError(f"mask {mask_path} is empty")
    # physical bounding box of the labelled voxels (index order x, y, z), compared with the image extent
    lo, hi = nz.min(0)[::-1] - 0.5, nz.max(0)[::-1] + 0.5
    pts = _extent_corners(mask, (lo, hi))
    img_idx = np.array([image.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in pts])
    size = np.asarray(image.GetSize())
    if np.any(img_idx.max(0) < -0.5) or np.any(img_idx.min(0) > size - 0.5):
        raise MaskOutsideImageError(
            f"the labelled region of mask {mask_path} lies entirely outside image {image_path}")

    problems = []
    if image.GetSize() != mask.GetSize():
        problems.append(f"size {mask.GetSize()} vs {image.GetSize()}")
    sp_i, sp_m = np.asarray(image.GetSpacing()), np.asarray(mask.GetSpacing())
    if np.any(np.abs(sp_m - sp_i) > tolerance * sp_i):
        problems.append(f"spacing {tuple(np.round(sp_m, 6))} vs {tuple(np.round(sp_i, 6))}")
    if np.any(np.abs(np.subtract(mask.GetOrigin(), image.GetOrigin())) > tolerance * sp_i):
        problems.append(f"origin {tuple(np.round(mask.GetOrigin(), 4))} vs {tuple(np.round(image.GetOrigin(), 4))}")
    if np.any(np.abs(np.subtract(mask.GetDirection(), image.GetDirection())) > tolerance):
        problems.append("direction cosines")
    if problems:
        raise GeometryMismatchError(
            f"mask {mask_path} does not match image {image_path}: " + "; ".join(problems)
            + f" (tolerance {tolerance})")
    if (mask.GetSpacing() == image.GetSpacing() and mask.GetOrigin() == image.GetOrigin()
            and mask.GetDirection() == image.GetDirection()):
        return mask
    return sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID())


@dataclass
class Case:
    """An image and its binary mask on the same grid."""

    image: sitk.Image
    mask: sitk.Image


def load_case(image_path: str | Path, mask_path: str | Path, label: int = 1,
              tolerance: float = 1e-3) -> Case:
    """Read an image and its mask and return them on one grid (see :func:`check_geometry`)."""
    image = read_image(image_path)
    if image.GetDimension() != 3:
        raise ImagingInputError(f"image {image_path} is {image.GetDimension()}-D; a 3-D volume is needed")
    mask = read_mask(mask_path, reference=image, label=label)
    mask = check_geometry(image, mask, tolerance, image_path, mask_path)
    if int(sitk.GetArrayViewFromImage(mask).sum()) == 0:
        raise EmptyMaskError(f"mask {mask_path} has no voxel with label {label} on the image grid")
    return Case(image=image, mask=mask)


# --- DICOM de-identification (PS3.15 Annex E, Basic Application Level Confidentiality Profile) ---
# Attributes of table E.1-1 that identify a patient, institution, operator or study and occur in CT
# series, with their basic-profile action: "X" remove, "Z" replace by an empty value,
# "D" replace by a dummy value, "U" replace UID by a consistent new UID.
PS315_BASIC_PROFILE: dict[str, str] = {
    "PatientName": "Z", "PatientID": "Z", "PatientBirthDate": "Z", "PatientSex": "Z",
    "PatientBirthTime": "X", "OtherPatientIDs": "X", "OtherPatientNames": "X",
    "OtherPatientIDsSequence": "X", "PatientBirthName": "X", "PatientMotherBirthName": "X",
    "PatientAddress": "X", "PatientTelephoneNumbers": "X", "MilitaryRank": "X",
    "EthnicGroup": "X", "Occupation": "X", "AdditionalPatientHistory": "X", "PatientComments": "X",
    "PatientAge": "X", "PatientSize": "X", "PatientWeight": "X", "MedicalRecordLocator": "X",
    "PatientInsurancePlanCodeSequence": "X", "ResponsiblePerson": "X", "ResponsibleOrganization": "X",
    "CountryOfResidence": "X", "RegionOfResidence": "X", "PregnancyStatus": "X",
    "InstitutionName": "X", "InstitutionAddress": "X", "InstitutionalDepartmentName": "X",
    "ReferringPhysicianName": "Z", "ReferringPhysicianAddress": "X",
    "ReferringPhysicianTelephoneNumbers": "X", "PhysiciansOfRecord": "X",
    "PerformingPhysicianName": "X", "NameOfPhysiciansReadingStudy": "X", "OperatorsName": "X",
    "RequestingPhysician": "X", "StationName": "X", "DeviceSerialNumber": "X",
    "AccessionNumber": "Z", "StudyID": "Z", "StudyDate": "Z", "StudyTime": "Z",
    "SeriesDate": "X", "SeriesTime": "X", "AcquisitionDate": "X", "AcquisitionTime": "X",
    "ContentDate": "Z", "ContentTime": "Z", "AcquisitionDateTime": "X", "InstanceCreationDate": "X",
    "InstanceCreationTime": "X", "StudyDescription": "X", "SeriesDescription": "X",
    "RequestAttributesSequence": "X", "ImageComments": "X", "AdmittingDiagnosesDescription": "X",
    "IssuerOfPatientID": "X", "ProtocolName": "X", "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepID": "X", "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X", "ScheduledProcedureStepDescription": "X",
    "RequestedProcedureDescription": "X", "DerivationDescription": "X",
    "StudyInstanceUID": "U", "SeriesInstanceUID": "U", "SOPInstanceUID": "U",
    "FrameOfReferenceUID": "U", "MediaStorageSOPInstanceUID": "U",
    "ReferencedSOPInstanceUID": "U", "IrradiationEventUID": "U",
}


def deidentify_dataset(ds, uid_map: dict[str, str] | None = None, uid_prefix: str | None = None):
    """De-identify a pydicom Dataset in place (DICOM PS3.15 basic profile, see PS315_BASIC_PROFILE).

    Private tags are removed ("retain private" options are not applied); UIDs are replaced by new
    ones, consistently across the files sharing ``uid_map``; PatientIdentityRemoved = YES and
    DeidentificationMethod are recorded as the profile requires. Returns ``ds``.
    """
    import pydicom
    from pydicom.uid import generate_uid

    uid_map = {} if uid_map is None else uid_map

    def new_uid(old: str) -> str:
        if old not in uid_map:
            uid_map[old] = generate_uid(prefix=uid_prefix)
        return uid_map[old]

    def visit(dataset):
        for elem in list(dataset):
            keyword = elem.keyword
            action = PS315_BASIC_PROFILE.get(keyword)
            if action == "X":
                del dataset[elem.tag]
            elif action == "Z":
                elem.value = None if elem.VR == "SQ" else ""
            elif action == "D":
                elem.value = "ANONYMOUS"
            elif action == "U" and elem.value:
                if elem.VM > 1:
                    elem.value = [new_uid(str(v)) for v in elem.value]
                else:
                    elem.value = new_uid(str(elem.value))
            elif elem.VR == "SQ":
                for item in elem.value:
                    visit(item)

    ds.remove_private_tags()
    visit(ds)
    if getattr(ds, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in ds.file_meta:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "PS3.15 E.1 Basic Profile (prime-stats)"  # LO: <= 64 chars
    ds.DeidentificationMethodCodeSequence = pydicom.Sequence([pydicom.Dataset()])
    code = ds.DeidentificationMethodCodeSequence[0]
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113100", "DCM", "Basic Application Confidentiality Profile"
    return ds


# acquisition parameters kept in the JSON sidecar (none of them identifies a patient)
_SIDECAR_KEYS = ("Modality", "Manufacturer", "ManufacturerModelName", "KVP", "XRayTubeCurrent",
                 "ExposureTime", "ConvolutionKernel", "SliceThickness", "ContrastBolusAgent",
                 "RescaleSlope", "RescaleIntercept")


def dicom_series_to_nifti(series_dir: str | Path, out_path: str | Path, series_uid: str | None = None,
                          deidentified_dicom_dir: str | Path | None = None) -> Path:
    """Convert a DICOM CT series to NIfTI without patient-identifying information.

    The NIfTI file carries only the voxel grid (its description field is cleared). A JSON sidecar
    ``<out>.json`` keeps non-identifying acquisition parameters. With ``deidentified_dicom_dir`` a
    de-identified copy of the series (:func:`deidentify_dataset`, consistent new UIDs) is written too.
    """
    import pydicom

    series_dir, out_path = Path(series_dir), Path(out_path)
    image = read_image(series_dir, series_uid)
    for key in image.GetMetaDataKeys():
        image.EraseMetaData(key)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(out_path))
    uid = series_uid or sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(series_dir))[0]
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series_dir), uid)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    sidecar = {k: (str(first.data_element(k).value) if k in first else None) for k in _SIDECAR_KEYS}
    sidecar["spacing_mm"] = list(image.GetSpacing())
    sidecar["size"] = list(image.GetSize())
    sidecar["deidentification"] = "DICOM PS3.15 Annex E basic profile: only the voxel grid and these fields are kept"
    name = out_path.name
    stem = name[:-7] if name.endswith(".nii.gz") else out_path.stem
    (out_path.parent / f"{stem}.json").write_text(json.dumps(sidecar, indent=2))
    if deidentified_dicom_dir is not None:
        dest = Path(deidentified_dicom_dir)
        dest.mkdir(parents=True, exist_ok=True)
        uid_map: dict[str, str] = {}
        for i, f in enumerate(files):
            ds = deidentify_dataset(pydicom.dcmread(f), uid_map)
            ds.save_as(dest / f"{i:05d}.dcm")
    return out_path
