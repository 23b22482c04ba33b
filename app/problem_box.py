"""Problems shown as one non-blocking message per group (a folder of bad files is one box, never a storm)."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

MAX_LISTED_PROBLEMS = 15


class ProblemBox(QMessageBox):
    """A warning box reused for every report; :attr:`last` holds the last report's title and every line as text."""

    def __init__(self, parent: QWidget):
        super().__init__(QMessageBox.Icon.Warning, "RadBench", "", parent=parent)
        self.last = ""

    def report(self, title: str, problems: list[str]) -> None:
        """Show ``title`` and the first :data:`MAX_LISTED_PROBLEMS` lines (and how many more, every line in the
        details), without blocking."""
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        self.last = f"{title}\n" + "\n".join(problems)
        self.setText(title)
        self.setInformativeText("\n".join(shown) + (f"\n… and {more} more (Show Details lists them all)" if more
                                                    else ""))
        self.setDetailedText("\n".join(problems) if more else "")
        self.open()
