"""The prediction panel: what the result belongs to, the verdict (or why there is none), the warnings next to it, a
probability bar per class, the decision rule and calibration, and the notice."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QToolButton, QVBoxLayout, QWidget

from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import Prediction

WARNING_STYLE = "color: #7a4a00; background: #fff1c1; border: 1px solid #e0b040; border-radius: 4px; padding: 4px;"


def subject(name: str, frame: int, frame_count: int) -> str:
    """What a result belongs to: "chest.dcm, frame 1 of 1" (``frame`` 0-based)."""
    return f"{name}, frame {frame + 1} of {frame_count}"


class PredictionPanel(QWidget):
    """Shows one :class:`Prediction`, or an empty state saying what to press; the notice is always visible.

    A prediction whose verdict is withheld (outside the model's domain) shows no label: the reason instead, and the
    probabilities only on request, greyed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.heading = QLabel(wordWrap=True)
        self.heading.setStyleSheet("color: #555;")
        self.label = QLabel("No prediction yet: press Run.", wordWrap=True)
        self.label.setStyleSheet("font-size: 18px; font-weight: bold;")
        self.warnings = QLabel(wordWrap=True, visible=False)
        self.warnings.setStyleSheet(WARNING_STYLE)
        self.warnings.setTextFormat(Qt.TextFormat.PlainText)
        self.show_probabilities = QToolButton(checkable=True, visible=False,
                                              toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.show_probabilities.setArrowType(Qt.ArrowType.RightArrow)
        self.show_probabilities.setText("Show the probabilities (for discussion only)")
        self.show_probabilities.setAutoRaise(True)
        self.show_probabilities.setToolTip("The model gives no verdict outside its domain; its probabilities can "
                                           "still be shown, greyed, for discussion")
        self.show_probabilities.toggled.connect(self._toggle_probabilities)
        self.probabilities = QWidget()
        self._bars_layout = QVBoxLayout(self.probabilities)
        self._bars_layout.setContentsMargins(0, 0, 0, 0)
        self.bars: dict[str, QProgressBar] = {}
        self.details = QLabel(wordWrap=True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.notice = QLabel(NOT_FOR_CLINICAL_USE)
        self.notice.setStyleSheet("color: #b00020; font-weight: bold;")
        for widget in (self.heading, self.label, self.warnings, self.show_probabilities, self.probabilities,
                       self.details):
            layout.addWidget(widget)
        layout.addStretch(1)
        layout.addWidget(self.notice)
        self._model_note = ""

    def show_model(self, model: Model) -> None:
        """Describe the loaded model before any prediction: name, labels, decision rule, calibration."""
        self._set_bars(model.card.labels)
        self._model_note = f"Model: {model.title}\n{_calibration_note(model)}"
        self.details.setText(self._model_note)

    def show_prediction(self, prediction: Prediction, model: Model, where: str | None = None) -> None:
        """The verdict of ``prediction`` (or why it is withheld), its warnings right below, then the bars. ``where``
        names what it belongs to (default: its file and frame, :func:`subject`)."""
        self._set_bars(tuple(prediction.probabilities))
        where = where or subject(prediction.path.name, prediction.frame, prediction.frame_count)
        self.heading.setText(f"{where} · backend {prediction.backend}")
        self.heading.setToolTip(str(prediction.path))
        withheld = prediction.withheld is not None
        if withheld:
            self.label.setText("No verdict: this scan is outside the model's domain")
        else:
            self.label.setText(f"{prediction.label}  ({prediction.probabilities[prediction.label]:.1%})")
        for name, p in prediction.probabilities.items():
            self.bars[name].setValue(round(p * 1000))
            self.bars[name].setFormat(f"{name}  {p:.1%}")
        warnings = [*([prediction.withheld] if withheld else []), *prediction.ood_warnings, *prediction.warnings]
        self.warnings.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings.setVisible(bool(warnings))
        self.show_probabilities.setVisible(withheld)
        self.show_probabilities.setChecked(False)
        self.probabilities.setEnabled(not withheld)
        self.probabilities.setVisible(not withheld)
        rule = (f"Decision: {prediction.positive_label} when its probability ≥ {prediction.threshold:.3f}."
                if prediction.threshold is not None else "Decision: the most probable label.")
        self.details.setText(f"Model: {prediction.model}\n{rule}\n{_calibration_note(model)}")

    def clear(self, message: str = "No prediction yet: press Run.", heading: str = "") -> None:
        """The empty state: ``heading`` names the scan and frame, ``message`` says what to press."""
        self.heading.setText(heading)
        self.heading.setToolTip("")
        self.label.setText(message)
        for bar in self.bars.values():
            bar.setValue(0)
            bar.setFormat(bar.objectName())
        self.warnings.hide()
        self.show_probabilities.hide()
        self.probabilities.setEnabled(True)
        self.probabilities.show()
        self.details.setText(self._model_note)

    def _toggle_probabilities(self, shown: bool) -> None:
        self.show_probabilities.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.probabilities.setVisible(shown)

    def _set_bars(self, labels: tuple[str, ...]) -> None:
        if tuple(self.bars) == labels:
            return
        for bar in self.bars.values():
            bar.deleteLater()
        self.bars = {}
        for name in labels:
            bar = QProgressBar(maximum=1000, objectName=name, textVisible=True)
            bar.setFormat(name)
            self._bars_layout.addWidget(bar)
            self.bars[name] = bar


def _calibration_note(model: Model) -> str:
    calibration = model.card.extra.get("calibration")
    if not calibration:
        return "Probabilities are not calibrated (the model card reports no calibration)."
    return (f"Probabilities calibrated by {calibration.get('method', 'an unnamed method')}; expected calibration "
            f"error {calibration.get('ece_after', '?')} on validation. Validation figures read higher than on "
            "new data.")
