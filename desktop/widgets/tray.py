"""The tray icon: Lumen lives here; closing the window hides it (when a tray exists) instead of quitting."""

from __future__ import annotations

from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop import messages
from desktop.resources import icon_path


def make_tray(window, controller, open_settings, quit_app) -> QSystemTrayIcon | None:  # noqa: ANN001
    """A tray icon with the main commands, or None where the desktop has no tray (then closing quits)."""
    if not QSystemTrayIcon.isSystemTrayAvailable():
        return None
    tray = QSystemTrayIcon(QIcon(str(icon_path())), window)
    tray.setToolTip(messages.APP_NAME)
    menu = QMenu(window)
    for text, slot in [
        ("&Show Lumen", lambda: (window.show(), window.raise_(), window.activateWindow())),
        ("&Describe screen", lambda: controller.handle_action("describe_screen")),
        ("&Stop", controller.stop),
        ("Se&ttings…", open_settings),
        ("&Quit", quit_app),
    ]:
        action = QAction(messages.tr(text), menu)
        action.triggered.connect(slot)
        menu.addAction(action)
    tray.setContextMenu(menu)
    tray.activated.connect(
        lambda reason: window.show() if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
    tray.show()
    window.hide_on_close = True
    return tray
