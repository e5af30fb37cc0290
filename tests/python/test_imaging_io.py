"""Reading images/masks (NIfTI, NRRD, DICOM series, DICOM SEG), geometry checks, de-identification.

Built from a real CT (IBSI / TCIA soft-tissue sarcoma STS_008), cropped around the tumour."""
from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from prime_stats.imaging import (
    EmptyMaskError,
    GeometryMismatchError,
    ImagingInputError,
    LabelNotFoundError,
    MaskOutsideImageError,
    check_geometry,
    dicom_series_to_nifti,
    extract_files,
    load_case,
    read_image,
    read_mask,
)

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


@pytest.fixture(scope="module")
def real_case(shared_data):
    folder = shared_data / "ibsi" / "sts_ct" / "STS_008"
    image = sitk.ReadImage(str(folder / "CT_image.nii.gz"))
    mask = sitk.ReadImage(str(folder / "CT_mask.nii.gz"))
    nz = np.argwhere(sitk.GetArrayFromImage(mask) > 0)
    lo, hi = nz.min(0)[::-1] - 3, nz.max(0)[::-1] + 4
    lo = np.maximum(lo, 0)
    size = (np.minimum(hi, np.asarray(image.GetSize())) - lo).tolist()
    return sitk.RegionOfInterest(image, size, lo.tolist()), sitk.RegionOfInterest(mask, size, lo.tolist())


def _write(img, path):
    sitk.WriteImage(img, str(path))
    return path


def test_nifti_and_nrrd_read_identically(real_case, tmp_path):
    image, mask = real_case
    a = read_image(_write(image, tmp_path / "ct.nii.gz"))
    b = read_image(_write(image, tmp_path / "ct.nrrd"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    m = read_mask(_write(mask, tmp_path / "m.nrrd"))
    assert m.GetPixelID() == sitk.sitkUInt8 and set(np.unique(sitk.GetArrayFromImage(m))) == {0, 1}


def test_missing_empty_and_multilabel_masks_give_errors_naming_the_file(real_case, tmp_path):
    image, mask = real_case
    img = _write(image, tmp_path / "ct.nii.gz")
    with pytest.raises(ImagingInputError, match="nope.nii.gz"):
        load_case(img, tmp_path / "nope.nii.gz")
    with pytest.raises(ImagingInputError, match="absent_ct.nii.gz"):
        read_image(tmp_path / "absent_ct.nii.gz")
    empty = _write(mask * 0, tmp_path / "empty.nii.gz")
    with pytest.raises(EmptyMaskError, match="empty.nii.gz"):
        load_case(img, empty)
    # two labels: the tumour (1) and a second structure (2) in the same file
    arr = sitk.GetArrayFromImage(mask).astype(np.uint8)
    arr[:, :2, :] = np.where(arr[:, :2, :] == 0, 2, arr[:, :2, :])
    multi = sitk.GetImageFromArray(arr)
    multi.CopyInformation(mask)
    path = _write(multi, tmp_path / "multi.nii.gz")
    one = load_case(img, path, label=1).mask
    np.testing.assert_array_equal(sitk.GetArrayFromImage(one), sitk.GetArrayFromImage(mask))
    two = load_case(img, path, label=2).mask
    assert sitk.GetArrayFromImage(two).sum() == (arr == 2).sum()
    with pytest.raises(LabelNotFoundError, match=r"label 3 not in mask .*multi.nii.gz.*\[1, 2\]"):
        load_case(img, path, label=3)


def test_geometry_mismatch_tolerance_and_outside(real_case, tmp_path):
    image, mask = real_case
    sp = np.asarray(image.GetSpacing())
    # header rounding (well within tolerance): aligned onto the image grid, voxels unchanged
    nudged = sitk.Image(mask)
    nudged.SetOrigin(tuple(np.asarray(mask.GetOrigin()) + 2e-4 * sp))
    nudged.SetSpacing(tuple(sp * (1 + 1e-5)))
    out = check_geometry(image, nudged, 1e-3)
    assert out.GetOrigin() == image.GetOrigin() and out.GetSpacing() == image.GetSpacing()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(mask))
    # a real mismatch: 5 % spacing difference, or half a voxel shift
    wrong = sitk.Image(mask)
    wrong.SetSpacing(tuple(sp * 1.05))
    with pytest.raises(GeometryMismatchError, match=r"mask wrong.nii.gz does not match image ct.nii.gz: spacing"):
        check_geometry(image, wrong, 1e-3, "ct.nii.gz", "wrong.nii.gz")
    shifted = sitk.Image(mask)
    shifted.SetOrigin(tuple(np.asarray(mask.GetOrigin()) + 0.5 * sp))
    with pytest.raises(GeometryMismatchError, match="origin"):
        check_geometry(image, shifted)
    smaller = sitk.RegionOfInterest(mask, [s - 1 for s in mask.GetSize()], [0, 0, 0])
    with pytest.raises(GeometryMismatchError, match="size"):
        check_geometry(image, smaller)
    far = sitk.Image(mask)
    far.SetOrigin(tuple(np.asarray(mask.GetOrigin()) + 1000.0))
    img = _write(image, tmp_path / "ct.nii.gz")
    with pytest.raises(MaskOutsideImageError, match="far.nii.gz"):
        load_case(img, _write(far, tmp_path / "far.nii.gz"))


def _write_dicom_series(image: sitk.Image, folder, patient_name="Doe^Jane", patient_id="MRN-123456"):
    """Write a CT volume as a DICOM series (one int16 file per slice), with identifying tags."""
    folder.mkdir(parents=True, exist_ok=True)
    hu = sitk.Cast(sitk.Round(image), sitk.sitkInt16)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    direction = image.GetDirection()
    orient = "\\".join(f"{v:.6f}" for v in (direction[0], direction[3], direction[6],
                                            direction[1], direction[4], direction[7]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(hu.GetDepth()):
        sl = hu[:, :, k]
        pos = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {"0010|0010": patient_name, "0010|0020": patient_id, "0010|0030": "19600101",
                "0008|0080": "General Hospital", "0008|0060": "CT", "0020|000d": study,
                "0020|000e": series, "0020|0052": frame, "0008|0018": generate_uid(),
                "0008|0016": "1.2.840.10008.5.1.4.1.1.2", "0020|0013": str(k + 1),
                "0020|0032": "\\".join(f"{v:.6f}" for v in pos), "0020|0037": orient,
                "0018|0050": f"{image.GetSpacing()[2]:.6f}", "0028|1052": "0", "0028|1053": "1",
                "0018|0060": "120", "0008|103e": "arterial phase"}
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"slice{k:04d}.dcm"))
        writer.Execute(sl)
    return study


def _write_seg(reference: sitk.Image, labels: np.ndarray, path):
    """A DICOM Segmentation (BINARY) with one frame per labelled slice and segment."""
    from pydicom.pixels import pack_bits

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SEG_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SEG_SOP_CLASS, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SegmentationType = "SEG", "BINARY"
    ds.Rows, ds.Columns = labels.shape[1], labels.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    segs = []
    for number in (1, 2):
        item = Dataset()
        item.SegmentNumber, item.SegmentLabel = number, f"segment {number}"
        segs.append(item)
    ds.SegmentSequence = segs
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [reference.GetSpacing()[1], reference.GetSpacing()[0]]
    pm.SliceThickness = reference.GetSpacing()[2]
    po = Dataset()
    d = reference.GetDirection()
    po.ImageOrientationPatient = [d[0], d[3], d[6], d[1], d[4], d[7]]
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [pm], [po]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames, per_frame = [], []
    for number in (1, 2):
        for k in range(labels.shape[0]):
            plane = labels[k] == number
            if not plane.any():
                continue
            fg = Dataset()
            pp, si = Dataset(), Dataset()
            pp.ImagePositionPatient = list(reference.TransformIndexToPhysicalPoint((0, 0, k)))
            si.ReferencedSegmentNumber = number
            fg.PlanePositionSequence, fg.SegmentIdentificationSequence = [pp], [si]
            per_frame.append(fg)
            frames.append(plane.astype(np.uint8))
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.NumberOfFrames = len(frames)
    ds.PixelData = pack_bits(np.stack(frames))
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_series_and_seg_roundtrip(real_case, tmp_path):
    image, mask = real_case
    _write_dicom_series(image, tmp_path / "series")
    ct = read_image(tmp_path / "series")
    assert ct.GetSize() == image.GetSize()
    np.testing.assert_allclose(ct.GetSpacing(), image.GetSpacing(), rtol=1e-5)
    np.testing.assert_allclose(ct.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ct),
                                  np.round(sitk.GetArrayFromImage(image)).astype(np.int16))
    labels = sitk.GetArrayFromImage(mask).astype(np.uint8)
    labels[:, :2, :2] = 2
    seg = _write_seg(ct, labels, tmp_path / "seg.dcm")
    m1 = read_mask(seg, reference=ct, label=1)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(m1), (labels == 1).astype(np.uint8))
    assert sitk.GetArrayFromImage(read_mask(seg, reference=ct, label=2)).sum() == (labels == 2).sum()
    with pytest.raises(LabelNotFoundError, match="seg.dcm"):
        read_mask(seg, reference=ct, label=3)
    with pytest.raises(ImagingInputError, match="reference"):
        read_mask(seg)
    # DICOM series + DICOM SEG extract like the NIfTI pair (same voxels, integer-rounded HU); on the
    # native grid, as DICOM stores positions as decimal strings (1e-6 mm differences move a resampled grid)
    native = {"image_types": {"Original": {}}, "resampled_spacing": None}
    nii = extract_files(_write(sitk.Cast(sitk.Round(image), sitk.sitkInt16), tmp_path / "ct.nii.gz"),
                        _write(mask, tmp_path / "mask.nii.gz"), native)
    dcm = extract_files(tmp_path / "series", seg, native)
    assert dcm.keys() == nii.keys()
    for k in nii:
        assert dcm[k] == pytest.approx(nii[k], rel=1e-6, abs=1e-9), k  # spacing stored to 1e-6 mm


def test_deidentified_conversion_keeps_voxels_and_drops_identity(real_case, tmp_path):
    image, _ = real_case
    study = _write_dicom_series(image, tmp_path / "series")
    out = dicom_series_to_nifti(tmp_path / "series", tmp_path / "nifti" / "ct.nii.gz",
                                deidentified_dicom_dir=tmp_path / "anon")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))),
                                  sitk.GetArrayFromImage(read_image(tmp_path / "series")))
    for f in (out, tmp_path / "nifti" / "ct.json"):
        raw = f.read_bytes() if f.suffix == ".json" else __import__("gzip").decompress(f.read_bytes())
        for secret in (b"Doe", b"MRN-123456", b"General Hospital", b"19600101", study.encode()):
            assert secret not in raw, (f.name, secret)
    sidecar = json.loads((tmp_path / "nifti" / "ct.json").read_text())
    assert sidecar["Modality"] == "CT" and sidecar["KVP"] == "120"
    anon = [pydicom.dcmread(p) for p in sorted((tmp_path / "anon").glob("*.dcm"))]
    assert len(anon) == image.GetDepth()
    for ds in anon:
        assert ds.PatientName == "" and ds.PatientID == "" and "PatientBirthDate" not in ds or ds.PatientBirthDate == ""
        assert "InstitutionName" not in ds and "SeriesDescription" not in ds
        assert ds.PatientIdentityRemoved == "YES" and ds.StudyInstanceUID != study
    assert len({ds.StudyInstanceUID for ds in anon}) == 1 and len({ds.SeriesInstanceUID for ds in anon}) == 1
    assert len({ds.SOPInstanceUID for ds in anon}) == len(anon)
    # the anonymised series is still a readable CT with the same voxels
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(tmp_path / "anon")),
                                  sitk.GetArrayFromImage(read_image(tmp_path / "series")))
