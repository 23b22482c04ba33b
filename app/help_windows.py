"""The Help menu's windows: Keyboard shortcuts (every key of the menus and of the image, and the mouse) and About
(the version, a summary of the model card, the notice)."""

from __future__ import annotations

import html
import platform
from typing import TYPE_CHECKING

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMenu,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import radbench
from radbench.app.scan_pane import PANE_KEYS
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model

if TYPE_CHECKING:
    from radbench.app.main_window import MainWindow

#: What the mouse does on the image.
MOUSE = (
    ("Left-drag", "Window / level: right widens the window, down raises the level"),
    ("Right- or middle-drag", "Pan"),
    ("Wheel", "Zoom about the cursor"),
    ("Double-click", "Fit to window"),
)


def shortcut_rows(window: MainWindow) -> list[tuple[str, str, str]]:
    """Every key the window answers to, as (section, keys, what it does): the menus' shortcuts, the image's keys
    (:data:`scan_pane.PANE_KEYS`, active while the image or its controls have the focus) and the mouse."""
    rows = []

    def visit(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                visit(action.menu(), f"{path} › {action.text().replace('&', '')}")
            elif not action.shortcut().isEmpty():
                keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
                rows.append(("Menus", keys, f"{path} › {action.text().replace('&', '').split(chr(9))[0]}"))

    for action in window.menuBar().actions():
        if action.menu() is not None:
            visit(action.menu(), action.text().replace("&", ""))
    rows += [("Image (click it first)", " or ".join(keys), text) for keys, text, _method, _args in PANE_KEYS]
    rows += [("Mouse on the image", gesture, text) for gesture, text in MOUSE]
    return rows


class ShortcutsWindow(QDialog):
    """Help › Keyboard shortcuts: a table of :func:`shortcut_rows`, non-modal."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.setWindowTitle("RadBench keyboard shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["Where", "Keys", "Action"])
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The image's keys act while the image or one of its controls has the focus: click the "
                                "image first.", wordWrap=True))
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(640, 560)

    def rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.table.item(r, c).text() for c in range(3)) for r in range(self.table.rowCount())]


def show_shortcuts(window: MainWindow) -> ShortcutsWindow:
    dialog = getattr(window, "shortcuts_window", None)
    if dialog is None:
        dialog = window.shortcuts_window = ShortcutsWindow(window)
    dialog.show()
    dialog.raise_()
    return dialog


def card_summary(model: Model | None) -> list[tuple[str, str]]:
    """The model card in a few lines, as (field, text): what a user should know before reading a prediction."""
    if model is None:
        return [("Model", "none loaded: runs are disabled")]
    card = model.card
    rows = [("Model", model.title), ("Labels", ", ".join(card.labels))]
    if card.intended_use:
        rows.append(("Intended use", card.intended_use))
    if card.positive_label is not None and card.threshold is not None:
        rows.append(("Decision", f"{card.positive_label} when its probability ≥ {card.threshold:.3f}"))
    domain = card.domain
    if domain.get("modalities") or domain.get("body_parts"):
        rows.append(("Domain", f"{'/'.join(domain.get('modalities', [])) or 'any modality'} of the "
                               f"{', '.join(b.lower() for b in domain.get('body_parts', [])) or 'any body part'}; "
                               "outside it no verdict is given"))
    validation = card.extra.get("metrics", {}).get("validation", {})
    if validation:
        figures = [f"{name} {validation[key]:.1%}" for name, key in (("accuracy", "accuracy"),
                   ("sensitivity", "sensitivity"), ("specificity", "specificity")) if key in validation]
        if "roc_auc" in validation:
            figures.append(f"ROC AUC {validation['roc_auc']:.3f}")
        rows.append(("Validation", f"{', '.join(figures)} on {validation.get('images', '?')} images (validation "
                                   "figures read higher than on new data)"))
    calibration = card.extra.get("calibration")
    if calibration:
        rows.append(("Calibration", f"{calibration.get('method', 'unnamed method')}; expected calibration error "
                                    f"{calibration.get('ece_after', '?')}"))
    dataset = card.extra.get("dataset", {})
    if dataset.get("citation"):
        rows.append(("Training data", f"{dataset['citation']} ({dataset.get('license', 'licence not stated')})"))
    architecture = card.extra.get("architecture", {})
    if architecture.get("type"):
        rows.append(("Architecture", f"{architecture['type']}, {architecture.get('parameters', '?'):,} parameters, "
                                     f"trained from {architecture.get('trained_from', '?')}"))
    return rows


class AboutWindow(QDialog):
    """Help › About: the version, a summary of the model card (:func:`card_summary`) and the notice."""

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.setWindowTitle("About RadBench")
        rows = "".join(f"<tr><td valign='top'><b>{html.escape(name)}</b>&nbsp;&nbsp;</td><td>{html.escape(text)}</td>"
                       "</tr>" for name, text in card_summary(window.model))
        self.text = (f"<h2>RadBench {html.escape(radbench.__version__)}</h2>"
                     "<p>Open medical scans, preprocess them with naive, NumPy and Numba backends, classify them with "
                     "ONNX Runtime, and time every stage.</p>"
                     f"<h3>The model card</h3><table cellspacing='2'>{rows}</table>"
                     "<p>The full card, training command and limits: models/README.md.</p>"
                     f"<p style='color:#b00020'><b>{html.escape(NOT_FOR_CLINICAL_USE)}</b> A prediction is something "
                     "to discuss, never a diagnosis.</p>"
                     f"<p style='color:#555'>Python {platform.python_version()}, Qt {qVersion()}, PySide6 "
                     f"{PySide6.__version__}</p>")
        label = QLabel(self.text, wordWrap=True, textFormat=Qt.TextFormat.RichText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setAlignment(Qt.AlignmentFlag.AlignTop)
        content = QWidget()
        QVBoxLayout(content).addWidget(label)
        scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(buttons)
        self.resize(620, 560)


def show_about(window: MainWindow) -> AboutWindow:
    dialog = getattr(window, "about_window", None)
    if dialog is None:
        dialog = window.about_window = AboutWindow(window)
    dialog.show()
    dialog.raise_()
    return dialog
