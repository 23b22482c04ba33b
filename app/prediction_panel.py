"""The prediction panel: label, a probability bar per class, calibration note, warnings, and the notice."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import Prediction


class PredictionPanel(QWidget):
    """Shows one :class:`Prediction`; the "not for clinical use" notice is always visible."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.label = QLabel("No prediction yet: press Run.")
        self.label.setStyleSheet("font-size: 18px; font-weight: bold;")
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        self._bars_layout = QVBoxLayout()
        layout.addLayout(self._bars_layout)
        self.bars: dict[str, QProgressBar] = {}
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.details)
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #b26a00; font-weight: bold;")
        self.warnings.hide()
        layout.addWidget(self.warnings)
        layout.addStretch(1)
        self.notice = QLabel(NOT_FOR_CLINICAL_USE)
        self.notice.setStyleSheet("color: #b00020; font-weight: bold;")
        layout.addWidget(self.notice)

    def show_model(self, model: Model) -> None:
        """Describe the loaded model before any prediction: name, labels, decision rule, calibration."""
        self._set_bars(model.card.labels)
        self.details.setText(f"Model: {model.title}\n{_calibration_note(model)}")

    def show_prediction(self, prediction: Prediction, model: Model) -> None:
        self._set_bars(tuple(prediction.probabilities))
        self.label.setText(f"{prediction.label}  ({prediction.probabilities[prediction.label]:.1%})")
        for name, p in prediction.probabilities.items():
            self.bars[name].setValue(round(p * 1000))
            self.bars[name].setFormat(f"{name}  {p:.1%}")
        rule = (f"Decision: {prediction.positive_label} when its probability ≥ {prediction.threshold:.3f}."
                if prediction.threshold is not None else "Decision: the most probable label.")
        self.details.setText(f"Model: {prediction.model}\n{rule}\n{_calibration_note(model)}\n"
                             f"Backend {prediction.backend}, frame {prediction.frame + 1} of {prediction.frame_count}.")
        warnings = list(prediction.ood_warnings) + list(prediction.warnings)
        self.warnings.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings.setVisible(bool(warnings))

    def clear(self, message: str = "No prediction yet: press Run.") -> None:
        self.label.setText(message)
        for bar in self.bars.values():
            bar.setValue(0)
            bar.setFormat(bar.objectName())
        self.warnings.hide()

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
