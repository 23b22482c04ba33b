"""Write the in-domain sample films: two pediatric chest radiographs of the validation split as DICOM files.

    python -m radbench.models.samples --data ../shared/data/chest_xray/train NORMAL/FILE PNEUMONIA/FILE

Each film (an 8-bit grey JPEG of the training data) becomes an uncompressed DICOM (CR, CHEST, MONOCHROME2,
8 bits) in ``sample_images/`` holding exactly the grey values RadBench decodes from the JPEG, so the model
sees the same input from either file. The files carry no identifiers: no names, IDs, dates or institution,
only UIDs derived from the file name (the same file always gives the same UIDs). The source film must be a
validation film of the bundled model's split (checked), so that its prediction is not a memorized one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radbench.inference.loading import load_scan
from radbench.models.dataset import LABELS, list_samples, split_by_patient

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "sample_images"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def dicom_from_film(path: Path, label: str) -> Dataset:
    """The film's decoded grey values as a CR chest DICOM dataset without identifiers."""
    grey = load_scan(path).grey_frame()
    pixels = np.asarray(grey)
    if not np.array_equal(pixels, np.round(pixels)) or pixels.min() < 0 or pixels.max() > 255:
        raise SystemExit(f"{path}: expected 8-bit grey values")
    pixels = pixels.astype(np.uint8)
    uid = lambda what: generate_uid(entropy_srcs=["radbench-sample", path.name, what])  # noqa: E731

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = uid("instance")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CR_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid("series")
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", ""
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "", "", "", ""
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyID = "", "", "", "", ""
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.PatientIdentityRemoved = "YES"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = "Grey values of an 8-bit JPEG of the public dataset, unchanged"
    ds.PatientOrientation = ""
    ds.SeriesDescription = f"Pediatric chest X-ray, {label} (Kermany 2018, CC BY 4.0)"
    ds.ImageComments = (f"Sample for RadBench, for education, not for clinical use. Source: {label}/{path.name} of the "
                        "training split of Kermany, Zhang, Goldbaum (2018), Mendeley Data v2, "
                        "doi:10.17632/rscbjbr9sj.2, CC BY 4.0; held out as validation by RadBench's model.")
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    return ds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the chest_xray/train folder")
    parser.add_argument("--out", type=Path, default=SAMPLES)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0, help="the split seed of the bundled model's training run")
    parser.add_argument("films", nargs="+", help="LABEL/FILE under --data, e.g. NORMAL/IM-0001-0001.jpeg")
    args = parser.parse_args(argv)
    _, validation = split_by_patient(list_samples(args.data), args.val_fraction, args.seed)
    held_out = {(LABELS[s.label], s.path.name) for s in validation}
    for film in args.films:
        label, name = film.split("/", 1)
        if (label, name) not in held_out:
            raise SystemExit(f"{film}: not a validation film of the split (seed {args.seed})")
        out = args.out / f"chest_pediatric_{label.lower()}.dcm"
        dicom_from_film(args.data / label / name, label).save_as(out, enforce_file_format=True)
        print(f"{film} -> {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
