"""Lumen's windows and dialogs. Every control: accessible name and description, keyboard path, visible focus."""

# Focus must always be visible, in any theme (high contrast included): a thick border in the
# palette's highlight colour, never a hard-coded colour.
FOCUS_STYLE = """
QPushButton:focus, QToolButton:focus, QLineEdit:focus, QComboBox:focus, QSpinBox:focus,
QDoubleSpinBox:focus, QKeySequenceEdit:focus, QPlainTextEdit:focus, QTextEdit:focus,
QCheckBox:focus, QRadioButton:focus, QSlider:focus {
    border: 3px solid palette(highlight);
    border-radius: 3px;
}
QPushButton { padding: 4px 10px; }
"""


def accessible(widget, name: str, description: str = ""):  # noqa: ANN001, ANN201
    """Set the accessible name/description (and tooltip) of ``widget``; returns it."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
        widget.setToolTip(description)
    return widget
