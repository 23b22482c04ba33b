"""The in-domain sample films: two pediatric chest radiographs of the bundled model's validation split, stored as
DICOM. Each loads, is classified as its source folder says, and raises no out-of-distribution warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
IN_DOMAIN = {"chest_pediatric_normal.dcm": "NORMAL", "chest_pediatric_pneumonia.dcm": "PNEUMONIA"}
IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyDate", "StudyTime",
               "SeriesDate", "AcquisitionDate", "ContentDate", "AccessionNumber", "InstitutionName",
               "InstitutionAddress", "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName",
               "OtherPatientIDs", "StationName", "DeviceSerialNumber")


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.mark.parametrize("name", sorted(IN_DOMAIN))
def test_sample_is_a_proper_cr_chest_dicom_without_identifiers(name):
    ds = dcmread(SAMPLES / name)
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    assert (ds.Modality, ds.BodyPartExamined, ds.PhotometricInterpretation) == ("CR", "CHEST", "MONOCHROME2")
    assert ds.SamplesPerPixel == 1 and ds.pixel_array.ndim == 2
    assert ds.PatientIdentityRemoved == "YES"
    assert not [key for key in IDENTIFYING if str(ds.get(key, "") or "").strip()]
    assert "CC BY 4.0" in ds.ImageComments


@pytest.mark.parametrize("name, label", sorted(IN_DOMAIN.items()))
def test_sample_is_classified_as_its_folder_says_without_a_warning(model, name, label):
    for backend in BACKEND_NAMES:
        prediction = Pipeline(model, backend).run(SAMPLES / name)
        assert prediction.withheld is None
        assert prediction.ood_warnings == ()
        assert prediction.label == label, (backend, dict(prediction.probabilities))


def test_samples_stay_under_15_mb():
    files = [p for p in SAMPLES.iterdir() if p.is_file()]
    assert {*IN_DOMAIN} <= {p.name for p in files}
    assert sum(p.stat().st_size for p in files) < 15 * 1024 * 1024
