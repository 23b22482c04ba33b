"""Small generated DICOM series for the series tests: CT slices whose pixels tell them apart."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

STUDY = generate_uid()


def write_slice(path: Path, *, series_uid: str | None, z: float | None, instance: int | None, size=(8, 8),
                value: int = 0, orientation=(1, 0, 0, 0, 1, 0)) -> Path:
    """A one-frame CT slice whose pixels all hold ``value`` (so a test can tell slices apart by their pixels)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.StudyInstanceUID, ds.SeriesNumber, ds.SeriesDescription = "CT", STUDY, 3, "Chest 1.0 mm"
    if series_uid is not None:
        ds.SeriesInstanceUID = series_uid
    if z is not None:
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, z], list(orientation)
    if instance is not None:
        ds.InstanceNumber = instance
    ds.Rows, ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.full(size, value, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_mixed_folder(tmp_path: Path) -> Path:
    """Six slices of one series under shuffled names with positions out of order (value = anatomical rank), one
    slice of another size in that series, one slice without a series UID, a PNG and a lone DICOM of another
    series."""
    tmp_path.mkdir(exist_ok=True)
    series_uid = generate_uid()
    zs = [-30.0, -20.0, -10.0, 0.0, 10.0, 20.0]
    names = random.Random(3).sample([f"f{n}.dcm" for n in (1, 2, 10, 11, 100, 3)], len(zs))
    for rank, (z, name) in enumerate(zip(reversed(zs), names)):  # the highest slice first: a different order
        write_slice(tmp_path / name, series_uid=series_uid, z=z, instance=50 - rank, value=len(zs) - 1 - rank)
    write_slice(tmp_path / "odd.dcm", series_uid=series_uid, z=5.0, instance=1, size=(4, 4))
    write_slice(tmp_path / "no_uid.dcm", series_uid=None, z=0.0, instance=1)
    write_slice(tmp_path / "lone.dcm", series_uid=generate_uid(), z=0.0, instance=1)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "photo2.png")
    return tmp_path
