"""The DICOM tag list: every header element, sequences flattened, identifying values marked."""

from __future__ import annotations

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from radbench.inference.tags import read_tags


def test_every_element_is_listed_and_identifying_ones_are_marked():
    rows = read_tags(get_testdata_file("CT_small.dcm"))
    by_name = {r.name.strip(): r for r in rows}
    assert by_name["Modality"].value == "CT" and not by_name["Modality"].identifying
    for name in ("Patient's Name", "Patient ID", "Institution Name", "Study Date", "SOP Instance UID",
                 "Media Storage SOP Instance UID"):
        assert by_name[name].identifying, name


def test_sequence_items_are_indented_and_inherit_identifying(tmp_path):
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    item = Dataset()
    item.CodeMeaning = "chest"
    ds.OtherPatientIDsSequence = [item]  # group 0010: identifying, and so is everything inside it
    ds.save_as(tmp_path / "seq.dcm")
    rows = read_tags(tmp_path / "seq.dcm")
    index = next(i for i, r in enumerate(rows) if r.vr == "SQ" and "Other Patient IDs" in r.name)
    assert rows[index].identifying and rows[index].value == "1 item"
    child = rows[index + 1]
    assert child.name == "  Code Meaning" and child.value == "chest" and child.identifying


def test_a_non_dicom_file_has_no_tags(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert read_tags(path) == []
