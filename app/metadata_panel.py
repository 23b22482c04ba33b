"""The metadata panel: key fields of the scan, and the full DICOM tag list, searchable, identifiers hidden."""

from __future__ import annotations

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

    def show_scan(self, scan: Scan) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        for name, value in key_fields(scan):
            label = QLabel(value, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
            self.form.addRow(f"{name}:", label)
        self._rows = read_tags(scan.path) if scan.source_format == "DICOM" else []
        self.reveal.setChecked(False)
        self._fill_table()

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


def key_fields(scan: Scan) -> list[tuple[str, str]]:
    """The fields a reader checks first, none of them patient-identifying."""
    frames = scan.pixels.shape[0]
    rows, cols = scan.pixels.shape[1:3]
    window = ", ".join(f"{p.name + ' ' if p.name else ''}C {p.center:g} / W {p.width:g}" for p in scan.window_presets)
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
