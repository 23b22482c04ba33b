"""The metadata panel: key fields of the scan (for a slice of a series, the series' shared fields, then the slice's
own), and the full DICOM tag list, searchable, identifiers hidden."""

from __future__ import annotations

from itertools import pairwise

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from radbench.inference.scan import Scan
from radbench.inference.series import Series
from radbench.inference.tags import TagRow, read_tags
from radbench.inference.wording import counted

HIDDEN = "•••• (patient-identifying: hidden)"
NAME_WIDTH = 150  # the widest the element name column starts (long names are cut, in full in the tooltip)


class MetadataPanel(QWidget):
    """Key fields always; every header element in a filterable table; identifying values hidden by default."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.form = QFormLayout()
        layout.addLayout(self.form)
        self.search = QLineEdit(placeholderText="Search tags (name, tag or value)",
                                toolTip="Show only the elements whose tag, name or value contains this text")
        self.reveal = QCheckBox("Show patient-identifying values",
                                toolTip="Names, IDs, dates and institutions are hidden until you tick this (they "
                                        "never appear in the corners, the exports or the batch results)")
        self.model = QStandardItemModel(0, 4, self)
        self.model.setHorizontalHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.proxy = QSortFilterProxyModel(self, filterCaseSensitivity=Qt.CaseSensitivity.CaseInsensitive,
                                           filterKeyColumn=-1)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView(sortingEnabled=False, wordWrap=False,
                                toolTip="Every element of the DICOM header (none for PNG, JPEG or TIFF)")
        self.table.setModel(self.proxy)
        header = self.table.horizontalHeader()
        for column, mode in enumerate((QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Interactive,
                                       QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.Stretch)):
            header.setSectionResizeMode(column, mode)  # the value takes what is left: no sideways scrolling
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        layout.addWidget(self.search)
        layout.addWidget(self.reveal)
        layout.addWidget(self.table, 1)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.reveal.toggled.connect(self._fill_table)
        self._rows: list[TagRow] = []
        self._series: Series | None = None

    def show_scan(self, scan: Scan, series: Series | None = None, index: int = 0) -> None:
        """The key fields and header of ``scan``; when it is slice ``index`` of ``series``, the series' shared fields
        come first, then the slice's own, and the table lists the slice's header. Identifying values are hidden again
        for every other scan or series (not when stepping through the slices of one)."""
        same_series = self._start(series)
        fields = key_fields(scan)
        if series is not None:
            self._add_fields("Series: shared by every slice", shared_fields(series))
            self._add_fields(f"This slice: {scan.path.name}", [("Slice", series.describe_slice(index))])
            fields = [(name, value) for name, value in fields if name != "File"]  # the heading names it
        self._add_fields("", fields)
        self._rows = read_tags(scan.path) if scan.source_format == "DICOM" else []
        if not same_series:
            self.reveal.setChecked(False)
        self._fill_table()

    def show_unreadable(self, series: Series, index: int, problem: str) -> None:
        """Slice ``index`` of ``series`` cannot be read: the series' shared fields, the slice's place and why."""
        self._start(series)
        self._add_fields("Series: shared by every slice", shared_fields(series))
        self._add_fields(f"This slice: {series.files[index].name}", [("Slice", series.describe_slice(index)),
                                                                      ("Problem", problem)])
        self._rows = []
        self._fill_table()

    def _start(self, series: Series | None) -> bool:
        """Empty the fields for a new scan or slice of ``series``; True if it is a slice of the series shown."""
        same_series = series is not None and series is self._series
        self._series = series
        while self.form.rowCount():
            self.form.removeRow(0)
        return same_series

    def _add_fields(self, heading: str, fields: list[tuple[str, str]]) -> None:
        if heading:
            title = QLabel(heading, textFormat=Qt.TextFormat.PlainText)
            title.setStyleSheet("font-weight: bold;")
            self.form.addRow(title)
        for name, value in fields:
            label = QLabel(value, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
            self.form.addRow(f"{name}:", label)

    def fields(self) -> dict[str, str]:
        """The key fields as shown, by label ("Modality:"); a section heading maps to ""."""
        shown = {}
        for row in range(self.form.rowCount()):
            label = self.form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = self.form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if label is None:
                shown[self.form.itemAt(row, QFormLayout.ItemRole.SpanningRole).widget().text()] = ""
            else:
                shown[label.widget().text()] = field.widget().text()
        return shown

    def visible_values(self) -> list[str]:
        """The value column as currently shown (after the search filter)."""
        return [self.proxy.index(r, 3).data() for r in range(self.proxy.rowCount())]

    def _fill_table(self) -> None:
        self.model.removeRows(0, self.model.rowCount())
        show = self.reveal.isChecked()
        for row in self._rows:
            value = row.value if show or not row.identifying else HIDDEN
            items = [QStandardItem(text) for text in (row.tag, row.name, row.vr, value)]
            items[1].setToolTip(row.name)
            items[3].setToolTip(value)
            self.model.appendRow(items)
        self.table.resizeColumnToContents(1)
        self.table.setColumnWidth(1, min(self.table.columnWidth(1), NAME_WIDTH))


def shared_fields(series: Series) -> list[tuple[str, str]]:
    """What every slice of ``series`` shares, as the grouping read it from their headers (nothing identifying: the
    series' UID stays in the table, hidden)."""
    spacing = _slice_spacing(series)
    return [
        ("Series", f"{series.number if series.number is not None else '—'}: {series.description or 'no description'}"),
        ("Slices", f"{len(series.files)}, ordered by {_ORDER_WORDS[series.ordered_by]}"),
        ("Slice spacing", f"{spacing:g} mm" if spacing is not None else "—"),
        ("Folder", str(series.files[0].parent)),
    ]


_ORDER_WORDS = {"position": "position along the slice normal", "instance number": "Instance Number",
                "file name": "file name (no positions or instance numbers)"}


def _slice_spacing(series: Series) -> float | None:
    """The median distance between neighbouring slices, when they are ordered by position."""
    locations = [value for value in series.locations if value is not None]
    if len(locations) < 2 or len(locations) != len(series.files):
        return None
    gaps = sorted(b - a for a, b in pairwise(locations))
    return round(gaps[len(gaps) // 2], 3)


def key_fields(scan: Scan) -> list[tuple[str, str]]:
    """The fields a reader checks first, none of them patient-identifying."""
    frames = scan.pixels.shape[0]
    rows, cols = scan.pixels.shape[1:3]
    window = "\n".join(f"{p.name + ' ' if p.name else ''}C {p.center:g} / W {p.width:g}" for p in scan.window_presets)
    spacing = f"{scan.pixel_spacing[0]:g} × {scan.pixel_spacing[1]:g} mm" if scan.pixel_spacing and any(
        scan.pixel_spacing) else "—"
    return [
        ("File", scan.path.name),
        ("Format", scan.source_format),
        ("Modality", scan.modality or "—"),
        ("Body part", scan.body_part or "—"),
        ("Size", f"{cols} × {rows} px, {counted(frames, 'frame')}"),
        ("Bits", f"{scan.bits_stored} stored / {scan.bits_allocated} allocated ({scan.pixels.dtype})"),
        ("Photometric", scan.photometric),
        ("Transfer syntax", scan.transfer_syntax or "—"),
        ("Decoded by", scan.decoder),
        ("Pixel spacing", spacing),
        ("Rescale", f"slope {scan.rescale_slope:g}, intercept {scan.rescale_intercept:g}"),
        ("Window", window or "none in file (image range)"),
    ]
