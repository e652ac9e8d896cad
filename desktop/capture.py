"""Screen capture with mss: every monitor, one monitor, the active window, or a region.

mss objects are not thread-safe (python-mss issues #198, #273), so each thread grabs with its own
``mss.MSS()``, created in that thread. Creating one costs 50-100 ms here (an X connection and a
shared-memory segment) against 2 ms for the grab itself, so a thread keeps its instance until
``invalidate_grabbers()`` (monitors added, removed or resized) makes every thread create a fresh
one at its next grab. Grabs return raw RGB rows, which go to the engine as
``ImageInput(encoding="rgb")`` without PNG encoding. Coordinates are physical pixels (mss makes
the process DPI-aware on Windows; X11 has no scaling), so HiDPI screens are grabbed at full
resolution. macOS has its own back-end (desktop.capture_macos: points, grabbed at the Retina pixel
resolution, ScreenCaptureKit) and Wayland the Screenshot portal. ``check_capture`` refuses black,
single-colour and near-blank grabs before the model can invent content for them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from dataclasses import dataclass, field

from desktop.capture_base import MIN_REGION, CaptureError, Rect
from engine.protocol import ImageInput

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Capture:
    rgb: bytes  # width * height * 3 bytes, rows top to bottom
    size: tuple[int, int]  # pixels
    rect: Rect  # where on the screen: pixels, points on macOS (a Retina grab's size is twice its rect's)
    label: str  # "screen", "window", "monitor 2", "region"
    model_rgb: bytes = b""  # the model's view (see for_model): model_side x model_side raw RGB
    model_side: int = 0
    # The grabbed frame as a PIL image, kept by ``grab`` so that checking and resizing do not
    # rebuild it from ``rgb`` (each rebuild allocates and unpacks 8 MB for a 1080p screen).
    image: object = field(default=None, compare=False, repr=False)

    def to_image_input(self, image_id: str) -> ImageInput:
        return ImageInput(image_id=image_id, data=self.rgb, encoding="rgb", size=self.size)

    def model_input(self, image_id: str) -> ImageInput | None:
        """The same image as the model sees it, or None when ``for_model`` was not applied."""
        if not self.model_side:
            return None
        return ImageInput(image_id, self.model_rgb, "rgb", (self.model_side, self.model_side))

    def for_model(self, side: int, timeline: dict[str, float] | None = None) -> Capture:
        """With the model's view added: the official transform's bicubic resize to (side, side)
        (``engine.image_io.model_input_image``), done here so that ~150 KB instead of a
        multi-megabyte frame crosses the pipe; the engine's preprocessing of it is bit-identical."""
        from dataclasses import replace

        from engine.image_io import model_input_image

        started = time.monotonic()
        small = model_input_image(self.to_pil(), side).tobytes()
        if timeline is not None:
            timeline["resize_start"], timeline["resized"] = started, time.monotonic()
        return replace(self, model_rgb=small, model_side=side)

    def to_pil(self):  # noqa: ANN201 - PIL is imported lazily
        """The pixels as a PIL image (do not modify it: it may be the grabbed frame itself)."""
        if self.image is not None:
            return self.image
        from PIL import Image

        return Image.frombytes("RGB", self.size, self.rgb)


def capture_supported() -> bool:
    """False on Linux without a graphical session. Wayland captures through the Screenshot portal
    (XWayland's DISPLAY would give mss a black or partial screen)."""
    from desktop.session import session_type

    return session_type() != "none"


def _mss():  # noqa: ANN202
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise CaptureError("unsupported", "no X11 display")
    import mss

    return mss.MSS() if hasattr(mss, "MSS") else mss.mss()


_local = threading.local()
_generation = [0]  # bumped by invalidate_grabbers(); a thread's instance from an older one is closed


def invalidate_grabbers() -> None:
    """The monitor layout changed: every thread creates a fresh mss instance at its next grab."""
    _generation[0] += 1


def _thread_mss():  # noqa: ANN202
    """This thread's mss instance (created here, used only here)."""
    sct = getattr(_local, "sct", None)
    if sct is not None and _local.generation != _generation[0]:
        sct.close()
        sct = None
    if sct is None:
        sct = _local.sct = _mss()
        _local.generation = _generation[0]
    return sct


@cache
def _mac():  # noqa: ANN202 - desktop.capture_macos.MacScreens on the pyobjc modules
    from desktop.capture_macos import MacScreens

    return MacScreens.native()


def monitors() -> tuple[Rect, list[Rect]]:
    """(bounding box of all monitors, each monitor; the main one first) in physical pixels, or
    points on macOS."""
    from desktop.session import session_type

    if session_type() == "wayland":  # XWayland's screen, if any, is not the desktop's layout
        raise CaptureError("wayland", "Wayland tells no application where the monitors are")
    if session_type() == "macos":
        from desktop.capture_macos import union

        rects = [d.bounds for d in _mac().displays()]
        return union(rects), rects
    with _mss() as sct:
        rects = [Rect(m["left"], m["top"], m["width"], m["height"]) for m in sct.monitors]
    return rects[0], rects[1:]


def grab(rect: Rect | None = None, label: str = "screen") -> Capture:
    """Grab ``rect`` (default: every monitor) in the calling thread, with that thread's mss."""
    from PIL import Image

    from desktop.session import screen_recording_allowed, session_type

    if session_type() == "wayland":
        return _portal_grab(rect, label)
    if not screen_recording_allowed(request=True):
        raise CaptureError("permission", "macOS Screen Recording permission not granted")
    if session_type() == "macos":
        return _mac_grab(rect, label)
    try:
        sct = _thread_mss()
        if rect is None:
            m = sct.monitors[0]
            rect = Rect(m["left"], m["top"], m["width"], m["height"])
        shot = sct.grab(rect.as_mss())
    except CaptureError:
        raise
    except Exception as exc:  # mss raises ScreenShotError, XError, OSError ... all mean "failed"
        invalidate_grabbers()  # e.g. the X server restarted: start afresh next time
        raise CaptureError("failed", repr(exc)) from exc
    image = Image.frombuffer("RGB", shot.size, shot.raw, "raw", "BGRX", 0, 1)  # raw: no extra copy
    return Capture(image.tobytes(), tuple(shot.size), rect, label, image=image)


def _mac_grab(rect: Rect | None, label: str) -> Capture:
    try:
        image, rect = _mac().grab(rect)
    except CaptureError:
        raise
    except Exception as exc:  # a pyobjc error, a missing framework: all mean "failed"
        raise CaptureError("failed", repr(exc)) from exc
    return Capture(image.tobytes(), image.size, rect, label, image=image)


def _portal_grab(rect: Rect | None, label: str) -> Capture:
    """Wayland: the whole desktop through org.freedesktop.portal.Screenshot, cut to ``rect``."""
    import io

    from PIL import Image

    from desktop import portal

    try:
        image = Image.open(io.BytesIO(portal.screenshot())).convert("RGB")
    except portal.PortalError as exc:
        raise CaptureError("unsupported", f"Wayland screenshot portal: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - an unreadable picture
        raise CaptureError("failed", repr(exc)) from exc
    whole = Rect(0, 0, *image.size)
    rect = whole if rect is None else rect.intersect(whole)
    if rect is None:
        raise CaptureError("failed", "the region is outside the screenshot")
    if rect != whole:
        image = image.crop((rect.left, rect.top, rect.left + rect.width, rect.top + rect.height))
    return Capture(image.tobytes(), image.size, rect, label, image=image)


@cache
def _capturer() -> ThreadPoolExecutor:
    """The one thread that captures for the app, created at the first use. A Python thread, so that
    its ``threading.local`` mss instance lives as long as it does: a QThreadPool thread is foreign to
    Python, each job there gets a fresh thread state, and the instance (an X connection, never
    closed) was dropped after every capture until the X server refused new clients."""
    return ThreadPoolExecutor(1, thread_name_prefix="lumen-capture")


def in_capture_thread(job: Callable[[], None]) -> None:
    """Run ``job`` in the capture thread, after the jobs already given to it."""
    _capturer().submit(job)


@cache
def _resizer() -> ThreadPoolExecutor:
    """The one thread that resizes captures for the model, created at the first use."""
    return ThreadPoolExecutor(1, thread_name_prefix="lumen-resize")


def check_and_prepare(shot: Capture, side: int | None, timeline: dict[str, float]) -> tuple[Capture, str | None]:
    """``check_capture`` and, when the model's input side is known, ``for_model``. The resize runs
    in a second thread while this one checks (PIL releases the GIL while resampling), so the check
    costs no wall time on the way to the first word; a refused capture's model view is dropped."""
    timeline["grabbed"] = time.monotonic()
    if not side:
        problem = check_capture(shot)
        timeline["checked"] = timeline["ready"] = time.monotonic()
        return shot, problem
    prepared = _resizer().submit(shot.for_model, side, timeline)
    problem = check_capture(shot)
    timeline["checked"] = time.monotonic()
    shot = prepared.result() if problem is None else shot
    timeline["ready"] = time.monotonic()
    return shot, problem


def check_capture(capture: Capture) -> str | None:
    """"black", "uniform" or "blank" when there is nothing to describe, else None."""
    from engine.image_io import blank_problem

    return blank_problem(capture.to_pil())


# ---------------------------------------------------------------- where things are


def monitor_at(x: int, y: int) -> tuple[int, Rect] | None:
    """(1-based index, rect) of the monitor containing the point (``monitors()``'s coordinates)."""
    _, rects = monitors()
    for index, rect in enumerate(rects, start=1):
        if rect.contains(x, y):
            return index, rect
    return None


def cursor_position() -> tuple[int, int] | None:
    """The mouse position in physical pixels (points on macOS), or None when it cannot be read
    this way (Wayland tells no client where the mouse is)."""
    from desktop.session import session_type

    session = session_type()
    try:
        if session == "macos":
            return _mac().cursor()
        if session == "windows":
            import ctypes
            from ctypes import wintypes

            point = wintypes.POINT()
            ctypes.windll.user32.GetCursorPos(ctypes.byref(point))  # type: ignore[attr-defined]
            return point.x, point.y
        if session == "x11":
            from Xlib import display

            d = display.Display()
            try:
                pointer = d.screen().root.query_pointer()
                return pointer.root_x, pointer.root_y
            finally:
                d.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "unknown"; the caller falls back
        log.debug("cursor position unavailable: %r", exc)
    return None


def active_window_rect() -> Rect | None:
    """The focused top-level window's frame in physical pixels (points on macOS), or None if
    unknown (Wayland tells no client which window is active)."""
    from desktop.session import session_type

    session = session_type()
    try:
        if session == "macos":
            return _mac().active_window()
        if session == "windows":
            return _active_window_windows()
        if session == "x11":
            return _active_window_x11()
    except Exception as exc:  # noqa: BLE001 - unknown window: the caller describes the screen
        log.debug("active window unavailable: %r", exc)
    return None


def _active_window_x11() -> Rect | None:
    from Xlib import X, display

    d = display.Display()
    try:
        root = d.screen().root
        prop = root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"), X.AnyPropertyType)
        window = d.create_resource_object("window", prop.value[0]) if prop and prop.value[0] else None
        if window is None:  # no window manager: walk up from the input focus to a top-level window
            window = d.get_input_focus().focus
            if not hasattr(window, "query_tree") or window == root:
                return None
            while True:
                parent = window.query_tree().parent
                if parent is None or parent == root or parent.id == root.id:
                    break
                window = parent
        geometry = window.get_geometry()
        origin = window.translate_coords(root, 0, 0)
        return Rect(-origin.x, -origin.y, geometry.width, geometry.height)
    finally:
        d.close()


def _active_window_windows() -> Rect | None:
    import ctypes
    from ctypes import wintypes

    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    hwnd = user32.GetForegroundWindow()
    if not hwnd:
        return None
    rect = wintypes.RECT()
    dwm_extended_frame_bounds = 9
    if ctypes.windll.dwmapi.DwmGetWindowAttribute(  # type: ignore[attr-defined]
        hwnd, dwm_extended_frame_bounds, ctypes.byref(rect), ctypes.sizeof(rect)
    ):
        user32.GetWindowRect(hwnd, ctypes.byref(rect))
    return Rect(rect.left, rect.top, rect.right - rect.left, rect.bottom - rect.top)


# ---------------------------------------------------------------- region drill-down


def grid_cell(rect: Rect, key: int, divisions: int = 3) -> Rect | None:
    """Cell ``key`` (1-9, laid out like a number pad: 7 top left, 3 bottom right) of ``rect``."""
    if not 1 <= key <= divisions * divisions:
        return None
    col = (key - 1) % divisions
    row = divisions - 1 - (key - 1) // divisions
    x0 = rect.left + rect.width * col // divisions
    x1 = rect.left + rect.width * (col + 1) // divisions
    y0 = rect.top + rect.height * row // divisions
    y1 = rect.top + rect.height * (row + 1) // divisions
    cell = Rect(x0, y0, x1 - x0, y1 - y0)
    return cell if min(cell.width, cell.height) >= MIN_REGION else None
