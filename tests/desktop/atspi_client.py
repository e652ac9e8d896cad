"""A minimal screen reader for the AT-SPI test: run with the *system* python3 (python3-pyatspi).

argv: <workdir> <app name> <text to wait for>. Finds the application on the accessibility bus,
dumps every object's role, name and description to <workdir>/tree.json, writes <workdir>/ready,
then records object:announcement events until one contains the awaited text (or a timeout), into
<workdir>/announcements.json.
"""

import json
import sys
import time
from pathlib import Path

import pyatspi
from gi.repository import GLib

work, app_name, wait_for = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
events = []
state = {"dumped": False, "start": time.monotonic()}


def on_event(event):
    events.append({"text": str(event.any_data), "politeness": event.detail1,
                   "source": event.source.name if event.source else ""})
    if wait_for in str(event.any_data):
        GLib.timeout_add(300, finish)


def text_of(node):
    """What a screen reader reads as the object's text (None: it has no Text interface)."""
    try:
        return node.queryText().getText(0, -1)
    except NotImplementedError:
        return None


def walk(node, depth=0, out=None, window=""):
    out = [] if out is None else out
    if node is None or depth > 25:
        return out
    try:
        window = node.name if depth == 1 else window
        out.append({"role": node.getRoleName(), "name": node.name, "description": node.description,
                    "depth": depth, "text": text_of(node), "window": window})
        for i in range(node.childCount):
            walk(node.getChildAtIndex(i), depth + 1, out, window)
    except Exception as exc:  # a window closing mid-walk
        out.append({"error": repr(exc)})
    return out


def find_app():
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        child = desktop.getChildAtIndex(i)
        if child is not None and child.name == app_name:
            return child
    return None


def poll():
    if time.monotonic() - state["start"] > 30:
        finish()
        return False
    if not state["dumped"]:
        app = find_app()
        if app is None or app.childCount < 4:  # main window, settings, transcript, setup wizard
            return True
        (work / "tree.json").write_text(json.dumps(walk(app)))
        state["dumped"] = True
        (work / "ready").write_text("1")
    return True


def finish():
    (work / "announcements.json").write_text(json.dumps(events))
    pyatspi.Registry.stop()
    return False


pyatspi.Registry.registerEventListener(on_event, "object:announcement")
GLib.timeout_add(200, poll)
pyatspi.Registry.start()
