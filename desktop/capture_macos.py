"""macOS behind desktop.capture's interface: displays, the mouse, the active window and the grab,
through pyobjc (Quartz, AppKit, ScreenCaptureKit).

Coordinates: on macOS a ``Rect`` is in points in the one global space every Quartz call shares
(origin at the top left of the main display, y downwards: ``CGDisplayBounds``, the bounds in
``CGWindowListCopyWindowInfo``, ``CGEventGetLocation``, the Accessibility API's ``AXPosition``).
No flip is needed; only AppKit (``NSEvent.mouseLocation``, ``NSScreen.frame``) counts from the
bottom left, and it is not used. A Retina display has 2 pixels per point (the display mode's pixel
width over its width in points), and the grab is made at pixel resolution: a ``Capture``'s rect is
in points, its size in pixels. mss grabs at the nominal resolution, a quarter of a Retina screen's
pixels. A grab across displays of different scales is put together at the largest of them.

The grab: ScreenCaptureKit's ``SCScreenshotManager`` (macOS 14 and later) one display at a time;
``CGWindowListCreateImage``, which mss uses, is obsoleted in macOS 15 and gone in macOS 26, and is
only the fallback for macOS 10.15 to 13. The Screen Recording permission is checked before (see
desktop.session); a refusal that ScreenCaptureKit reports itself is a "permission" CaptureError.

Nothing here has run on a Mac: it is tested against recorded fakes of these exact calls
(tests/desktop/test_capture_macos.py), two displays, one of them Retina.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from desktop.capture_base import MIN_REGION, CaptureError, Rect

MAX_DISPLAYS = 16
SCK_TIMEOUT_S = 5.0  # ScreenCaptureKit answers through completion handlers; never wait for ever
SC_USER_DECLINED = -3801  # SCStreamErrorUserDeclined: no Screen Recording permission


@dataclass(frozen=True)
class Display:
    display_id: int
    bounds: Rect  # points, global display space
    scale: float  # pixels per point (2.0 on Retina)


def _rect(cg_rect) -> Rect:  # noqa: ANN001 - a CGRect
    left, top = math.floor(cg_rect.origin.x), math.floor(cg_rect.origin.y)
    return Rect(left, top, round(cg_rect.size.width), round(cg_rect.size.height))


def union(rects: list[Rect]) -> Rect:
    left, top = min(r.left for r in rects), min(r.top for r in rects)
    right, bottom = max(r.left + r.width for r in rects), max(r.top + r.height for r in rects)
    return Rect(left, top, right - left, bottom - top)


class MacScreens:
    """The native calls, on the pyobjc modules (or recorded fakes with the same names)."""

    def __init__(self, quartz, appkit, screencapturekit=None) -> None:  # noqa: ANN001
        self.q, self.appkit, self.sck = quartz, appkit, screencapturekit

    @classmethod
    def native(cls) -> MacScreens:
        import AppKit
        import Quartz

        try:
            import ScreenCaptureKit
        except ImportError:  # pyobjc-framework-ScreenCaptureKit missing: the CoreGraphics fallback
            ScreenCaptureKit = None  # noqa: N806
        return cls(Quartz, AppKit, ScreenCaptureKit)

    @property
    def uses_screencapturekit(self) -> bool:
        return self.sck is not None and hasattr(self.sck, "SCScreenshotManager")  # macOS 14+

    # ------------------------------------------------------------------------ where things are
    def displays(self) -> list[Display]:
        """The active displays, the main one first, with their bounds in points and scale."""
        q = self.q
        error, ids, count = q.CGGetActiveDisplayList(MAX_DISPLAYS, None, None)
        if error:
            raise CaptureError("failed", f"CGGetActiveDisplayList error {error}")
        displays = []
        for display_id in ids[:count]:
            bounds = q.CGDisplayBounds(display_id)
            mode = q.CGDisplayCopyDisplayMode(display_id)
            pixels = q.CGDisplayModeGetPixelWidth(mode) if mode is not None else 0
            scale = pixels / bounds.size.width if pixels and bounds.size.width else 1.0
            displays.append(Display(display_id, _rect(bounds), scale))
        if not displays:
            raise CaptureError("failed", "no active display")
        return displays

    def cursor(self) -> tuple[int, int]:
        """The mouse in points: a CGEvent's location is already in the top-left global space."""
        point = self.q.CGEventGetLocation(self.q.CGEventCreate(None))
        return math.floor(point.x), math.floor(point.y)

    def active_window(self) -> Rect | None:
        """The frontmost application's front window: the first window of its process, in the
        on-screen list (front to back), on layer 0 (menus, the Dock and status items are above)."""
        q = self.q
        app = self.appkit.NSWorkspace.sharedWorkspace().frontmostApplication()
        if app is None:
            return None
        pid = app.processIdentifier()
        options = q.kCGWindowListOptionOnScreenOnly | q.kCGWindowListExcludeDesktopElements
        for info in q.CGWindowListCopyWindowInfo(options, q.kCGNullWindowID) or ():
            if info.get(q.kCGWindowOwnerPID) != pid or info.get(q.kCGWindowLayer) != 0:
                continue
            if info.get(q.kCGWindowAlpha, 1) == 0:
                continue  # an invisible helper window
            bounds = info.get(q.kCGWindowBounds)
            rect = Rect(math.floor(bounds["X"]), math.floor(bounds["Y"]), round(bounds["Width"]),
                        round(bounds["Height"]))
            if min(rect.width, rect.height) >= MIN_REGION:
                return rect
        return None

    # ------------------------------------------------------------------------------ the grab
    def grab(self, rect: Rect | None):  # noqa: ANN201 - (PIL image at pixel resolution, rect in points)
        from PIL import Image

        displays = self.displays()
        rect = union([d.bounds for d in displays]) if rect is None else rect
        parts = [(d, piece) for d in displays if (piece := d.bounds.intersect(rect)) is not None]
        if not parts:
            raise CaptureError("failed", f"{rect} is on no display")
        scale = max(d.scale for d, _ in parts)
        content = self._shareable_content() if self.uses_screencapturekit else None
        canvas = None
        for display, piece in parts:
            size = (round(piece.width * display.scale), round(piece.height * display.scale))
            image = (self._sck_shot(content, display, piece, size) if content is not None
                     else self._cg_shot(piece))
            wanted = (round(piece.width * scale), round(piece.height * scale))
            if image.size != wanted:  # a 1x display beside a Retina one, or a rounding pixel
                image = image.resize(wanted, Image.Resampling.BICUBIC)
            if piece == rect:
                return image, rect
            if canvas is None:  # gaps between displays of different sizes stay black
                canvas = Image.new("RGB", (round(rect.width * scale), round(rect.height * scale)))
            canvas.paste(image, (round((piece.left - rect.left) * scale), round((piece.top - rect.top) * scale)))
        return canvas, rect

    def _shareable_content(self):  # noqa: ANN202
        return self._wait(lambda done: self.sck.SCShareableContent
                          .getShareableContentExcludingDesktopWindows_onScreenWindowsOnly_completionHandler_(
                              False, True, done))

    def _sck_shot(self, content, display: Display, piece: Rect, size: tuple[int, int]):  # noqa: ANN001, ANN202
        sck = self.sck
        shared = next((d for d in content.displays() if d.displayID() == display.display_id), None)
        if shared is None:
            raise CaptureError("failed", f"ScreenCaptureKit does not list display {display.display_id}")
        content_filter = sck.SCContentFilter.alloc().initWithDisplay_excludingWindows_(shared, [])
        config = sck.SCStreamConfiguration.alloc().init()
        # sourceRect is in points, relative to the display; width and height are the output pixels.
        config.setSourceRect_(self.q.CGRectMake(piece.left - display.bounds.left, piece.top - display.bounds.top,
                                                piece.width, piece.height))
        config.setWidth_(size[0])
        config.setHeight_(size[1])
        config.setShowsCursor_(False)
        image = self._wait(lambda done: sck.SCScreenshotManager
                           .captureImageWithFilter_configuration_completionHandler_(content_filter, config, done))
        return self._pil(image)

    def _cg_shot(self, piece: Rect):  # noqa: ANN202 - macOS 10.15-13
        q = self.q
        image = q.CGWindowListCreateImage(  # without kCGWindowImageNominalResolution: pixel resolution
            q.CGRectMake(piece.left, piece.top, piece.width, piece.height), q.kCGWindowListOptionOnScreenOnly,
            q.kCGNullWindowID, q.kCGWindowImageBoundsIgnoreFraming | q.kCGWindowImageShouldBeOpaque)
        if image is None:
            raise CaptureError("failed", "CGWindowListCreateImage returned nothing")
        return self._pil(image)

    def _pil(self, image):  # noqa: ANN001, ANN202 - a CGImage: 32-bit BGRA rows, maybe padded
        from PIL import Image

        q = self.q
        width, height, stride = q.CGImageGetWidth(image), q.CGImageGetHeight(image), q.CGImageGetBytesPerRow(image)
        data = bytes(q.CGDataProviderCopyData(q.CGImageGetDataProvider(image)))
        return Image.frombuffer("RGB", (width, height), data, "raw", "BGRX", stride, 1)

    @staticmethod
    def _wait(start):  # noqa: ANN001, ANN205
        """Call ``start(handler)`` and wait for ScreenCaptureKit's ``handler(value, error)``, which
        it calls on one of its own queues (this is the capture thread, never the main one)."""
        finished, answer = threading.Event(), {}

        def handler(value, error) -> None:  # noqa: ANN001
            answer["value"], answer["error"] = value, error
            finished.set()

        start(handler)
        if not finished.wait(SCK_TIMEOUT_S):
            raise CaptureError("failed", "ScreenCaptureKit did not answer")
        error = answer["error"]
        if error is not None:
            if error.code() == SC_USER_DECLINED:
                raise CaptureError("permission", "Screen Recording permission refused")
            raise CaptureError("failed", f"ScreenCaptureKit: {error.localizedDescription()}")
        if answer["value"] is None:
            raise CaptureError("failed", "ScreenCaptureKit returned nothing")
        return answer["value"]
