"""DICOM files through pydicom 3 and an explicitly chosen decoder plugin per transfer syntax."""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterable
from io import BytesIO
from math import ceil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filereader import read_dataset as read_elements
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.pixels.utils import as_pixel_options, get_expected_length
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from radbench.inference.errors import NotAScanError, ScanError, quoted
from radbench.inference.loading import decoders, openjpeg_direct, pillow_direct
from radbench.inference.loading.codestream import check_frames
from radbench.inference.loading.last_resort import last_resorts
from radbench.inference.scan import Scan, WindowPreset
from radbench.inference.wording import counted

#: Patient-identifying (or linkable) attributes: copied into ``Scan.identifiers`` only, never into metadata.
#: Dates, times, instance UIDs and demographics count: with a name they re-identify a patient.
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientNames",
    "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge", "PatientAddress",
    "PatientTelephoneNumbers", "PatientMotherBirthName", "MilitaryRank", "EthnicGroup",
    "AccessionNumber", "StudyID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
    "AcquisitionDateTime", "ContentDate", "ContentTime",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "DeviceSerialNumber", "ReferringPhysicianName", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "OperatorsName", "RequestingPhysician",
)

#: Display fields that identify nobody: the only attributes copied into ``Scan.metadata`` (an allow-list).
METADATA_KEYWORDS = (
    "Modality", "BodyPartExamined", "ViewPosition", "Laterality", "ImageLaterality", "StudyDescription",
    "SeriesDescription", "ProtocolName", "ImageType", "Manufacturer", "ManufacturerModelName",
    "SOPClassUID", "PhotometricInterpretation", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel",
    "BitsAllocated", "BitsStored", "PixelRepresentation", "SliceThickness", "KVP",
)

_MAX_NAME_LENGTH = 200  # keep one odd element from flooding a display
_BITS_ALLOCATED = (1, 8, 16, 32, 64)
_SUPPORTED = (("MONOCHROME1", 1), ("MONOCHROME2", 1), ("RGB", 3))  # after YBR -> RGB and the palette
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_PIXEL_TAGS = (0x7FE00010, 0x7FE00009, 0x7FE00008)
_UNDEFINED_LENGTH = 0xFFFFFFFF
_SHARED_SEQUENCES = ("PixelValueTransformationSequence", "FrameVOILUTSequence", "PixelMeasuresSequence")
_DEFER_SIZE = "64 KB"  # large values (pixel data) are read only when used, after the size check
#: A deflated dataset's elements before the pixel data must inflate within this; the whole dataset within
#: the declared image plus this margin (overlays, icons, padding and private elements around the pixels).
_DEFLATED_MARGIN = 16 * 1024**2
_INFLATE_CHUNK = 1024**2
#: Top-level elements a deflated dataset may hold: the margin inflates to 2 million empty ones, which pydicom
#: takes 12 s to parse (a 14 KB fuzzed file); real files hold a few thousand.
_DEFLATED_MAX_ELEMENTS = 100_000
_ITEM_TAGS = (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")  # (FFFE,E000) little and big endian: a fragment
_OBJECT_AT = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")  # e.g. Pillow's '<_io.BytesIO object at 0x7f...>'
_PILLOW_LIMIT = re.compile(r"Image size \((\d+) pixels\) exceeds limit of (\d+) pixels.*")


def plugin_order(uid: UID, threads: int = 1) -> tuple[str, ...]:
    """The available pydicom decoder plugins for a compressed transfer syntax, in the order they are tried when
    decoding on ``threads`` threads (:mod:`.decoders`: measured fastest first)."""
    available = get_decoder(uid).available_plugins
    preferred = tuple(name for name in decoders.order(uid, threads) if name in available)
    return preferred + tuple(name for name in available if name not in preferred)


def decoder_order(uid: UID, threads: int = 1) -> tuple[str, ...]:
    """Every decoder that may read a compressed transfer syntax here, in the order tried on ``threads`` threads: the
    measured order (pydicom's plugins and RadBench's own, :mod:`.last_resort`), then the other installed plugins,
    then the other last resorts."""
    plugins, resorts = get_decoder(uid).available_plugins, tuple(name for name, _ in last_resorts(uid))
    preferred = tuple(name for name in decoders.order(uid, threads) if name in plugins or name in resorts)
    return (*preferred, *(n for n in plugins if n not in preferred), *(n for n in resorts if n not in preferred))


def decoder_choices(uid: UID) -> tuple[str, ...]:
    """Every decoder that may read a transfer syntax here, in the one-thread order; ``("pydicom",)`` for uncompressed
    and deflated data, ``()`` for a syntax pydicom cannot decode at all."""
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return ()
    return ("pydicom",) if decoder.is_native else decoder_order(uid)


def read_dataset(path: Path, *, force: bool, max_bytes: int) -> Dataset:
    """The header and (deferred) pixel data of a DICOM file; refuses objects that hold no image.

    ``force`` reads old files without the 'DICM' preamble. Large values such as the pixel data are read
    only when used, so :func:`declared_size` can refuse a huge image before it is loaded. A deflated
    dataset is inflated under a cap (see :func:`_read_deflated`), ``max_bytes`` bounding its image.
    """
    try:
        with path.open("rb") as fp:
            preamble = read_preamble(fp, force)
            meta = _read_file_meta_info(fp)
            if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
                ds = _read_deflated(path, fp, preamble, meta, max_bytes)
            else:
                ds = pydicom.dcmread(path, force=force, defer_size=_DEFER_SIZE)
    except ScanError:
        raise
    except Exception as exc:  # pydicom raises many types for a damaged header
        raise ScanError(path, f"damaged DICOM header: {_last_line(exc)}") from exc
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        sop_class = UID(ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID") or "")
        if "Rows" in ds or "Image Storage" in sop_class.name:
            raise ScanError(path, f"no pixel data in this {_uid_name(sop_class, 'image')} object")
        raise NotAScanError(path, f"no pixel data (a DICOMDIR or non-image object: {_uid_name(sop_class, 'unknown')})")
    return ds


def _read_deflated(path: Path, fp, preamble: bytes | None, meta, max_bytes: int) -> FileDataset:
    """A Deflated Explicit VR Little Endian dataset, inflated as a stream that may never outgrow its image.

    The elements before the pixel data must inflate within ``_DEFLATED_MARGIN``; the whole dataset within
    the image they declare (at most ``max_bytes``) plus that margin. pydicom would inflate it all at once.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = bytearray()

    def inflate_to(limit: int) -> None:
        while len(inflated) < limit and not inflater.eof:
            data = inflater.unconsumed_tail or fp.read(_INFLATE_CHUNK)
            if not data:
                break
            inflated.extend(inflater.decompress(data, limit - len(inflated)))

    def counted_until(stop_tags) -> Callable:
        count = 0

        def stop_when(tag, vr, length) -> bool:
            nonlocal count
            count += 1
            if count > _DEFLATED_MAX_ELEMENTS:
                raise ScanError(path, f"deflated dataset holds over {_DEFLATED_MAX_ELEMENTS} elements: refused")
            return tag in stop_tags
        return stop_when

    inflate_to(_DEFLATED_MARGIN)
    header = read_elements(BytesIO(inflated), False, True, stop_when=counted_until(_PIXEL_TAGS))
    try:
        declared = declared_size(path, header)[3]
    except ScanError:
        declared = 0  # no image header: the dataset is read and refused as usual, within the margin
    cap = min(declared, max_bytes) + _DEFLATED_MARGIN
    inflate_to(cap + 1)
    if len(inflated) > cap:
        raise ScanError(path, f"deflated data expands beyond its declared size ({_mib(declared)} image): refused")
    ds = read_elements(BytesIO(inflated), False, True, stop_when=counted_until(()))
    return FileDataset(path, ds, preamble, meta, is_implicit_VR=False, is_little_endian=True)


def _mib(nbytes: int) -> str:
    return f"{nbytes / 1024**2:.1f} MiB"


def declared_size(path: Path, ds: Dataset) -> tuple[int, int, int, int]:
    """``(rows, columns, frames, decoded bytes)`` from the header alone; refuses values it cannot decode.

    Bytes are Rows x Columns x NumberOfFrames x SamplesPerPixel x ceil(BitsAllocated / 8); PALETTE COLOR
    counts the RGB output in the palette's sample size.
    """
    rows, columns = _count(path, ds, "Rows"), _count(path, ds, "Columns")
    bits = _count(path, ds, "BitsAllocated")
    if bits not in _BITS_ALLOCATED:
        raise ScanError(path, f"unsupported Bits Allocated {bits} (expected one of {_BITS_ALLOCATED})")
    samples = _count(path, ds, "SamplesPerPixel", default=1)
    if samples not in (1, 3):
        raise ScanError(path, f"unsupported Samples per Pixel {samples} (expected 1 or 3)")
    frames = _count(path, ds, "NumberOfFrames", default=1)
    sample_bytes = ceil(bits / 8)
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        lut_bits = (ds.get("RedPaletteColorLookupTableDescriptor") or (0, 0, 8))[2]
        samples, sample_bytes = 3, max(sample_bytes, ceil(lut_bits / 8))
    return rows, columns, frames, rows * columns * frames * samples * sample_bytes


def dataset_to_scan(path: Path, ds: Dataset, *, decoder: str | None = None,
                    cover: tuple[int, int] | None = None) -> Scan:
    """Decode a dataset from :func:`read_dataset` (after the size check) into a :class:`Scan`.

    ``decoder``: only that decoder (see :mod:`.decoders`), else the default order. ``cover`` (height, width): a
    JPEG 2000 frame may be decoded at the coarsest resolution level still covering it (``Scan.fast_decode`` says
    whether it was, and why not).
    """
    syntax = _transfer_syntax(ds)
    frames = _count(path, ds, "NumberOfFrames", default=1)
    warnings = []
    if syntax.is_encapsulated:
        check_frames(path, ds, syntax, frames)
    else:
        keyword = next(k for k in _PIXEL_KEYWORDS if k in ds)
        value = _native_pixel_value(path, ds, keyword)
        expected, actual = get_expected_length(ds), len(value)
        if actual != expected and value[:4] in _ITEM_TAGS:
            raise ScanError(path, f"pixel data holds compressed (encapsulated) fragments but the transfer syntax "
                                  f"{syntax.name} is uncompressed: the file declares the wrong transfer syntax")
        if actual < expected:
            raise ScanError(path, f"pixel data truncated: {actual} of {expected} bytes")
        frame_bytes = max(1, expected // frames)
        if actual >= expected + frame_bytes:
            warnings.append(f"pixel data holds {actual // frame_bytes} frames' worth but Number of Frames is "
                            f"{frames}: only the declared frames were read")
    decoded = _decode(path, ds, syntax, frames, decoder, cover)
    pixels, photometric = decoded.pixels, decoded.photometric
    if not syntax.is_encapsulated and actual > expected + expected % 2 \
            and np.may_share_memory(pixels, np.frombuffer(value, np.uint8)):
        pixels = pixels.copy()  # a view would keep the excess frames or padding in memory as long as the scan
    return Scan(
        path=path,
        pixels=pixels,
        photometric=photometric,
        source_format="DICOM",
        decoder=decoded.decoder,
        decoder_threads=decoded.threads,
        fast_decode=decoded.fast_decode,
        rescale_slope=_float(_value(ds, "RescaleSlope"), 1.0),
        rescale_intercept=_float(_value(ds, "RescaleIntercept"), 0.0),
        window_presets=_window_presets(ds),
        modality=str(ds.get("Modality", "")),
        body_part=str(ds.get("BodyPartExamined", "")),
        pixel_spacing=_spacing(_value(ds, "PixelSpacing") or _value(ds, "ImagerPixelSpacing")),
        transfer_syntax=syntax.name,
        bits_allocated=int(ds.BitsAllocated),
        bits_stored=int(ds.get("BitsStored") or ds.BitsAllocated),
        metadata=_strings(ds, METADATA_KEYWORDS),
        identifiers=_strings(ds, IDENTIFYING_KEYWORDS),
        warnings=tuple(warnings),
    )


def _transfer_syntax(ds: Dataset) -> UID:
    """The file's transfer syntax; for files without one, the encoding pydicom found while reading."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if not syntax:
        implicit, little = ds.original_encoding
        syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        ds.file_meta.TransferSyntaxUID = syntax  # pydicom's decoders read it from here
    return UID(syntax)


def _count(path: Path, ds: Dataset, keyword: str, default: int | None = None) -> int:
    """A positive integer header value; a missing one (or, like pydicom, a zero one) takes ``default``."""
    value = ds.get(keyword)
    if value is None or value == "" or (value == 0 and default):
        if default is None:
            raise ScanError(path, f"header has no {keyword}")
        return default
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ScanError(path, f"invalid {keyword} {quoted(value)}") from None
    if count < 1:
        raise ScanError(path, f"invalid {keyword} {count}")
    return count


class _Decoded(NamedTuple):
    pixels: np.ndarray
    photometric: str
    decoder: str
    threads: int
    fast_decode: str


def _decode(path: Path, ds: Dataset, syntax: UID, frames: int, forced: str | None,
            cover: tuple[int, int] | None) -> _Decoded:
    """Pixels shaped (frames, rows, cols[, 3]), colour as RGB, with the decoder that gave them and its threads."""
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise ScanError(path, f"unsupported transfer syntax {_uid_name(syntax, '(none)')}") from None
    options = {**as_pixel_options(ds), "allow_excess_frames": False}
    threads, fast_decode = decoders.threads_now(), ""
    if decoder.is_native:
        if forced not in (None, "pydicom"):
            raise ScanError(path, f"decoder {forced} cannot read {syntax.name} pixel data: it is not compressed, "
                                  "only pydicom reads it (--decoder pydicom)")
        array, properties = decoder.as_array(ds, **options)
        plugin, threads = "pydicom", 1
        fast_decode = "no: not JPEG 2000" if cover else ""
    else:
        reduced, fast_decode = _fast_decode(ds, syntax, frames, forced, cover, threads) if cover else (None, "")
        if reduced is not None:
            (array, properties), plugin = reduced, pillow_direct.PLUGIN
        else:
            array, properties, plugin = _decode_compressed(path, ds, decoder, options, frames, threads, forced)
        threads = decoders.threads_of(plugin, syntax, threads)
    photometric = str(properties.get("photometric_interpretation", ""))
    samples = properties.get("samples_per_pixel", 1)
    if photometric == "PALETTE COLOR" and samples == 1:
        array, photometric, samples = _apply_palette(array, ds), "RGB", 3
    if (photometric, samples) not in _SUPPORTED:
        shown = quoted(photometric) if photometric else "(none)"
        raise ScanError(path, f"unsupported photometric interpretation {shown} with {counted(samples, 'sample')} "
                              "per pixel")
    if properties["number_of_frames"] == 1:
        array = array[np.newaxis]
    if not array.dtype.isnative:  # big endian files: swapped (in place when it can be), so NumPy and Numba get
        if array.flags.writeable:  # native data
            array = array.byteswap(inplace=True).view(array.dtype.newbyteorder("="))
        else:
            array = array.astype(array.dtype.newbyteorder("="))
    if not array.flags.c_contiguous:  # e.g. a view of planar (R..G..B..) data on the file's bytes: as pydicom
        array = np.ascontiguousarray(array)  # gives it when it copies
    return _Decoded(array, photometric, plugin, threads, fast_decode)


def _fast_decode(ds: Dataset, syntax: UID, frames: int, forced: str | None, cover: tuple[int, int],
                 threads: int) -> tuple[tuple[np.ndarray, dict] | None, str]:
    """A JPEG 2000 frame at the coarsest resolution level still covering ``cover``, and what the ``fast_decode``
    column says: "1/8" (each side divided by 8) when it was, else "no: <why>" (then the frame is decoded as usual)."""
    if syntax not in pillow_direct.SYNTAXES:
        return None, "no: not JPEG 2000"
    if forced not in (None, pillow_direct.PLUGIN):
        return None, f"no: decoder {forced} asked for (reduced levels are read by pillow)"
    found = pillow_direct.grey_codestream(ds, syntax, frames)
    if found is None:
        return None, "no: not a grey one-frame codestream"
    level = pillow_direct.reduction_for(int(ds.Rows), int(ds.Columns), found[2], cover)
    if not level:
        return None, "no: no coarser level covers the model input"
    reduced = pillow_direct.decode_grey_frame(ds, syntax, frames, threads, level)
    if reduced is None:
        return None, "no: the reduced level could not be decoded"
    return reduced, f"1/{2**level}"


def _decode_compressed(path: Path, ds: Dataset, decoder, options: dict, frames: int, threads: int,
                       forced: str | None) -> tuple[np.ndarray, dict, str]:
    """Try the decoders in :func:`decoder_order` for ``threads`` threads (only ``forced`` if given); the first that
    decodes names the result."""
    syntax, names = decoder.UID, decoder_order(decoder.UID, threads)
    resorts = dict(last_resorts(syntax))
    if not decoder.available_plugins and forced is None:
        needs = "; ".join(decoder.missing_dependencies)
        raise ScanError(path, f"{syntax.name} pixel data needs a decoder plugin, none is installed ({needs})")
    if forced is not None:
        if forced not in names:
            raise ScanError(path, f"decoder {forced} cannot read {syntax.name} pixel data here; "
                                  f"{_choices(decoder_order(syntax))}")  # one order, whatever the threads
        names = (forced,)
    failures = []
    for name in names:
        try:
            if name in resorts:
                array, properties = resorts[name](path, ds, frames)
            else:
                array, properties = _plugin_decode(ds, decoder, name, options, frames, threads)
        except Exception as exc:  # noqa: BLE001 - a plugin's refusal: try the next one, report them all
            failures.append(f"{name}: {_plugin_reason(exc)}")
        else:
            return array, properties, name
    if forced is not None:
        raise ScanError(path, f"{syntax.name} pixel data could not be decoded by the decoder asked for, "
                              f"{failures[0]}; {_choices(decoder_order(syntax))}")
    raise ScanError(path, f"{syntax.name} pixel data could not be decoded: " + "; ".join(failures))


def _choices(names: tuple[str, ...]) -> str:
    return f"the decoders for it here are {', '.join(names)}" if names else "no decoder for it is installed here"


def _plugin_decode(ds: Dataset, decoder, name: str, options: dict, frames: int,
                   threads: int) -> tuple[np.ndarray, dict]:
    """One plugin, by its direct path where one applies (pylibjpeg's and Pillow's OpenJPEG on a grey frame's
    fragments: less memory, the same pixels), else through pydicom."""
    syntax = decoder.UID
    if name == openjpeg_direct.PLUGIN:
        direct = openjpeg_direct.decode_grey_frame(ds, syntax, frames, (name,))
    elif name == pillow_direct.PLUGIN:
        direct = pillow_direct.decode_grey_frame(ds, syntax, frames, threads)
    else:
        direct = None
    if direct is not None:
        return direct
    if name == pillow_direct.PLUGIN and syntax in pillow_direct.SYNTAXES:
        with decoders.openjpeg_threads(threads):
            return decoder.as_array(ds, decoding_plugin=name, **options)
    return decoder.as_array(ds, decoding_plugin=name, **options)


def _native_pixel_value(path: Path, ds: Dataset, keyword: str) -> bytes | bytearray:
    """The uncompressed pixel data element's value; a deferred one (not read yet) is read into a ``bytearray``.

    pydicom decodes native data as a view of a writable buffer, correcting unused high bits in place, so the
    file's bytes become the decoded pixels: one copy of the image in memory, not two. The read is bounded by
    the file's size, as pydicom's own deferred read is.
    """
    raw = ds.get_item(keyword, keep_deferred=True)
    if not isinstance(raw, RawDataElement) or raw.value is not None or not raw.length \
            or raw.length == _UNDEFINED_LENGTH:
        return ds[keyword].value or b""
    with path.open("rb") as fp:
        available = max(0, os.fstat(fp.fileno()).st_size - raw.value_tell)
        value = bytearray(min(raw.length, available))
        fp.seek(raw.value_tell)
        read = fp.readinto(value)
    if read < len(value):
        del value[read:]
    ds[raw.tag] = raw._replace(value=value)  # converted by pydicom as if it had read it
    return ds[keyword].value or b""


def _apply_palette(array: np.ndarray, ds: Dataset) -> np.ndarray:
    """``apply_color_lut``, after swapping big endian 16-bit LUT data that pydicom 3.0 reads as little endian."""
    if ds.original_encoding[1] is False:
        entries = ds.RedPaletteColorLookupTableDescriptor[0] or 2**16
        for keyword in ("RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
                        "BluePaletteColorLookupTableData"):
            if keyword in ds and len(ds[keyword].value) == 2 * entries:
                ds[keyword].value = np.frombuffer(ds[keyword].value, ">u2").astype("<u2").tobytes()
    return apply_color_lut(array, ds)


def _plugin_reason(exc: Exception) -> str:
    """A decoder's failure in stable words: no memory addresses, internal errors said for what they mean."""
    text = _OBJECT_AT.sub("", _last_line(exc))
    if "'NoneType' object has no attribute" in text:  # pydicom's GDCM plugin when GDCM gave no buffer
        return "returned no pixel data"
    if "could not broadcast input array" in text:  # pydicom's frame buffer sized from the header
        return "decoded frame size differs from the header's Rows, Columns, Samples per Pixel and Bits Allocated"
    return _PILLOW_LIMIT.sub(r"a frame of \1 pixels is over Pillow's limit of \2", text)


def _uid_name(uid: UID, default: str) -> str:
    """A UID's registered name, or the UID itself quoted (it came from the file)."""
    return uid.name if uid.is_valid and uid.name != uid else quoted(uid) if uid else default


def _last_line(exc: Exception) -> str:
    """The plugin's own words: pydicom wraps them as 'Unable to decode ...:\\n  plugin: message'."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text.split(": ", 1)[1] if ": " in text and text.split(": ", 1)[0].isidentifier() else text


def _value(ds: Dataset, keyword: str):
    """A top-level value, else the one in the first item of an enhanced file's shared functional groups."""
    if keyword in ds:
        return ds[keyword].value
    for group in (ds.get("SharedFunctionalGroupsSequence") or [])[:1]:
        for sequence in _SHARED_SEQUENCES:
            for item in (group.get(sequence) or [])[:1]:
                if keyword in item:
                    return item[keyword].value
    return None


def _values(value) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]


def _float(value, default: float) -> float:
    values = _values(value)
    return float(values[0]) if values else default


def _window_presets(ds: Dataset) -> tuple[WindowPreset, ...]:
    """One preset per (WindowCenter, WindowWidth) pair, named by WindowCenterWidthExplanation; width >= 1."""
    centers, widths = _values(_value(ds, "WindowCenter")), _values(_value(ds, "WindowWidth"))
    names = _values(_value(ds, "WindowCenterWidthExplanation"))
    names += [""] * (len(centers) - len(names))
    return tuple(WindowPreset(float(c), float(w), str(n)) for c, w, n in zip(centers, widths, names)
                 if float(w) >= 1)


def _spacing(value) -> tuple[float, float] | None:
    values = _values(value)
    return (float(values[0]), float(values[1])) if len(values) == 2 else None


def _strings(ds: Dataset, keywords: Iterable[str]) -> dict[str, str]:
    """The non-empty values of ``keywords`` as display strings (multi-values joined by a backslash)."""
    found = {}
    for keyword in keywords:
        values = _values(ds.get(keyword))
        if keyword == "SOPClassUID" and values:
            values = [UID(values[0]).name]
        if values:
            found[keyword] = "\\".join(str(v) for v in values)[:_MAX_NAME_LENGTH]
    return found
