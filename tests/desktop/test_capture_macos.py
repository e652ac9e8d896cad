"""macOS capture (desktop.capture_macos) through desktop.capture's interface, against recorded fakes
of the pyobjc calls: a 2x Retina main display (1440 x 900 points, 2880 x 1800 pixels) and a 1x
display to its right, 180 points higher. The fakes answer like Quartz, AppKit and ScreenCaptureKit
(completion handlers on another thread, padded BGRA rows) and record every call."""

from __future__ import annotations

import threading
from types import SimpleNamespace as NS

import pytest
from PIL import Image

from desktop import capture, session
from desktop.capture import CaptureError, Rect, grid_cell
from desktop.capture_macos import MacScreens

MAIN, SIDE = 1, 7
BOUNDS = {MAIN: (0, 0, 1440, 900), SIDE: (1440, -180, 1920, 1080)}
PIXELS = {MAIN: 2880, SIDE: 1920}


def cg_rect(x: float, y: float, w: float, h: float) -> NS:
    return NS(origin=NS(x=x, y=y), size=NS(width=w, height=h))


def screen_picture(display: int) -> Image.Image:
    """What each display shows, at its pixel resolution: a different colour per quadrant."""
    w, h = PIXELS[display], PIXELS[display] * BOUNDS[display][3] // BOUNDS[display][2]
    image = Image.new("RGB", (w, h), (10 * display, 0, 0))
    image.paste((0, 200, 0), (w // 2, 0, w, h // 2))  # top right quadrant green
    image.paste((0, 0, 200), (0, h // 2, w // 2, h))  # bottom left quadrant blue
    return image


class CGImage:
    """BGRA rows padded to a 64-byte multiple plus 64, as CoreGraphics pads them."""

    def __init__(self, image: Image.Image) -> None:
        self.width, self.height = image.size
        self.stride = (self.width * 4 + 63) // 64 * 64 + 64
        row = image.convert("RGBA").tobytes("raw", "BGRA")
        line = self.width * 4
        self.data = b"".join(row[y * line:(y + 1) * line] + b"\0" * (self.stride - line) for y in range(self.height))


class RecordedMac:
    """Quartz, AppKit and ScreenCaptureKit as pyobjc names them; ``calls`` records each call."""

    kCGWindowListOptionOnScreenOnly, kCGWindowListExcludeDesktopElements, kCGNullWindowID = 1, 16, 0
    kCGWindowImageBoundsIgnoreFraming, kCGWindowImageShouldBeOpaque = 1, 2
    kCGWindowOwnerPID, kCGWindowLayer, kCGWindowBounds, kCGWindowAlpha = (
        "kCGWindowOwnerPID", "kCGWindowLayer", "kCGWindowBounds", "kCGWindowAlpha")

    def __init__(self, windows: list[dict] | None = None, frontmost_pid: int = 42, mouse=(0.0, 0.0),
                 declined: bool = False) -> None:
        self.calls: list[tuple] = []
        self.windows, self.frontmost_pid, self.mouse, self.declined = windows or [], frontmost_pid, mouse, declined
        mac = self

        class Workspace:
            @staticmethod
            def sharedWorkspace():  # noqa: N802, ANN205
                mac.calls.append(("NSWorkspace.sharedWorkspace",))
                return NS(frontmostApplication=lambda: NS(processIdentifier=lambda: mac.frontmost_pid))

        self.appkit = NS(NSWorkspace=Workspace)
        self.sck = NS(SCShareableContent=NS(
            getShareableContentExcludingDesktopWindows_onScreenWindowsOnly_completionHandler_=self._content),
            SCContentFilter=NS(alloc=lambda: NS(initWithDisplay_excludingWindows_=self._filter)),
            SCStreamConfiguration=NS(alloc=lambda: NS(init=self._config)),
            SCScreenshotManager=NS(captureImageWithFilter_configuration_completionHandler_=self._screenshot))

    # Quartz
    def CGGetActiveDisplayList(self, most, displays, count):  # noqa: N802, ANN001, ANN201
        self.calls.append(("CGGetActiveDisplayList", most, displays, count))
        return 0, (MAIN, SIDE), 2

    def CGDisplayBounds(self, display):  # noqa: N802, ANN001, ANN201
        return cg_rect(*BOUNDS[display])

    def CGDisplayCopyDisplayMode(self, display):  # noqa: N802, ANN001, ANN201
        return NS(display=display)

    def CGDisplayModeGetPixelWidth(self, mode):  # noqa: N802, ANN001, ANN201
        return PIXELS[mode.display]

    def CGEventCreate(self, source):  # noqa: N802, ANN001, ANN201
        self.calls.append(("CGEventCreate", source))
        return "event"

    def CGEventGetLocation(self, event):  # noqa: N802, ANN001, ANN201
        self.calls.append(("CGEventGetLocation", event))
        return NS(x=self.mouse[0], y=self.mouse[1])

    def CGWindowListCopyWindowInfo(self, options, relative_to):  # noqa: N802, ANN001, ANN201
        self.calls.append(("CGWindowListCopyWindowInfo", options, relative_to))
        return self.windows

    CGRectMake = staticmethod(cg_rect)

    def CGWindowListCreateImage(self, rect, options, window, image_options):  # noqa: N802, ANN001, ANN201
        self.calls.append(("CGWindowListCreateImage", (rect.origin.x, rect.origin.y, rect.size.width,
                                                         rect.size.height), options, window, image_options))
        display = MAIN if rect.origin.x < 1440 else SIDE
        return CGImage(self._cut(display, rect, None))

    def CGImageGetWidth(self, image):  # noqa: N802, ANN001, ANN201
        return image.width

    def CGImageGetHeight(self, image):  # noqa: N802, ANN001, ANN201
        return image.height

    def CGImageGetBytesPerRow(self, image):  # noqa: N802, ANN001, ANN201
        return image.stride

    def CGImageGetDataProvider(self, image):  # noqa: N802, ANN001, ANN201
        return image

    def CGDataProviderCopyData(self, provider):  # noqa: N802, ANN001, ANN201
        return provider.data

    # ScreenCaptureKit
    def _content(self, exclude_desktop, on_screen_only, handler) -> None:  # noqa: ANN001
        self.calls.append(("getShareableContent", exclude_desktop, on_screen_only))
        displays = [NS(displayID=lambda d=d: d) for d in (MAIN, SIDE)]
        threading.Thread(target=handler, args=(NS(displays=lambda: displays), None)).start()

    def _filter(self, display, excluded):  # noqa: ANN001, ANN202
        self.calls.append(("SCContentFilter", display.displayID(), excluded))
        return NS(display=display.displayID())

    def _config(self):  # noqa: ANN202
        config = NS()
        for name in ("SourceRect", "Width", "Height", "ShowsCursor"):
            setattr(config, f"set{name}_", lambda value, name=name: setattr(config, name, value))
        return config

    def _screenshot(self, content_filter, config, handler) -> None:  # noqa: ANN001
        r = config.SourceRect
        self.calls.append(("captureImage", content_filter.display, (r.origin.x, r.origin.y, r.size.width,
                                                                     r.size.height), config.Width, config.Height,
                           config.ShowsCursor))
        if self.declined:
            error = NS(code=lambda: -3801, localizedDescription=lambda: "The user declined TCCs")
            threading.Thread(target=handler, args=(None, error)).start()
            return
        x, y = BOUNDS[content_filter.display][:2]
        image = self._cut(content_filter.display, cg_rect(x + r.origin.x, y + r.origin.y, r.size.width,
                                                          r.size.height), (config.Width, config.Height))
        threading.Thread(target=handler, args=(CGImage(image), None)).start()

    @staticmethod
    def _cut(display: int, global_rect: NS, size) -> Image.Image:  # noqa: ANN001
        x, y, w, _ = BOUNDS[display]
        scale = PIXELS[display] / w
        left, top = (global_rect.origin.x - x) * scale, (global_rect.origin.y - y) * scale
        box = (round(left), round(top), round(left + global_rect.size.width * scale),
               round(top + global_rect.size.height * scale))
        piece = screen_picture(display).crop(box)
        return piece if size is None or piece.size == size else piece.resize(size)


def colours(shot) -> set:  # noqa: ANN001
    return {colour for _, colour in shot.to_pil().getcolors(maxcolors=16)}


@pytest.fixture
def mac(monkeypatch):  # noqa: ANN001, ANN201
    """desktop.capture on "macOS" with the recorded calls; returns the fake."""
    fake = RecordedMac()
    monkeypatch.setattr(session, "session_type", lambda: "macos")
    monkeypatch.setattr(session, "screen_recording_allowed", lambda request=False, cg=None: True)
    monkeypatch.setattr(capture, "_mac", lambda: MacScreens(fake, fake.appkit, fake.sck))
    return fake


def test_two_displays_in_points_and_the_mouse_picks_the_second(mac) -> None:  # noqa: ANN001
    whole, monitors = capture.monitors()
    assert monitors == [Rect(0, 0, 1440, 900), Rect(1440, -180, 1920, 1080)]
    assert whole == Rect(0, -180, 3360, 1080)
    assert mac.calls[0] == ("CGGetActiveDisplayList", 16, None, None)
    mac.calls.clear()
    mac.mouse = (2000.7, -100.2)  # CGEvent locations are top-left based already: no flip
    assert capture.cursor_position() == (2000, -101)
    assert mac.calls == [("CGEventCreate", None), ("CGEventGetLocation", "event")]
    assert capture.monitor_at(*capture.cursor_position()) == (2, Rect(1440, -180, 1920, 1080))
    mac.mouse = (1439.9, 899.5)  # the main display's last point
    assert capture.monitor_at(*capture.cursor_position())[0] == 1


def test_the_active_window_is_the_frontmost_app_s_first_layer_0_window(mac) -> None:  # noqa: ANN001
    def window(pid: int, layer: int, x: int, y: int, w: int, h: int, alpha: float = 1.0) -> dict:
        return {"kCGWindowOwnerPID": pid, "kCGWindowLayer": layer, "kCGWindowAlpha": alpha,
                "kCGWindowBounds": {"X": x, "Y": y, "Width": w, "Height": h}}

    mac.windows = [window(42, 25, 1300, 0, 30, 22),  # its status item, above layer 0
                   window(42, 0, 0, 0, 800, 600, alpha=0.0),  # an invisible helper window
                   window(99, 0, 10, 10, 1000, 700),  # another app's window
                   window(42, 0, 100.5, 50, 800, 600)]
    assert capture.active_window_rect() == Rect(100, 50, 800, 600)
    assert mac.calls == [("NSWorkspace.sharedWorkspace",), ("CGWindowListCopyWindowInfo", 1 | 16, 0)]
    mac.frontmost_pid = 7  # an app without a window: unknown, the caller describes the screen
    assert capture.active_window_rect() is None


def test_a_window_on_the_retina_display_is_grabbed_at_pixel_resolution(mac) -> None:  # noqa: ANN001
    shot = capture.grab(Rect(100, 50, 800, 600), "window")
    assert [c for c in mac.calls if c[0] != "CGGetActiveDisplayList"] == [
        ("getShareableContent", False, True), ("SCContentFilter", MAIN, []),
        ("captureImage", MAIN, (100, 50, 800, 600), 1600, 1200, False)]
    assert shot.rect == Rect(100, 50, 800, 600) and shot.size == (1600, 1200) and shot.label == "window"
    assert len(shot.rgb) == 1600 * 1200 * 3
    assert shot.rgb == screen_picture(MAIN).crop((200, 100, 1800, 1300)).tobytes()  # padding dropped, BGRA->RGB


def test_region_grid_cells_map_to_the_right_pixels_on_each_display(mac) -> None:  # noqa: ANN001
    _, (main, side) = capture.monitors()
    cell = grid_cell(main, 9)  # top right of the Retina display
    assert cell == Rect(960, 0, 480, 300)
    shot = capture.grab(cell, "region")
    assert mac.calls[-1] == ("captureImage", MAIN, (960, 0, 480, 300), 960, 600, False)
    assert shot.size == (960, 600) and colours(shot) == {(0, 200, 0)}  # all green quadrant
    cell = grid_cell(side, 1)  # bottom left of the 1x display, which starts at y = -180
    assert cell == Rect(1440, 540, 640, 360)
    shot = capture.grab(cell, "region")
    assert mac.calls[-1] == ("captureImage", SIDE, (0, 720, 640, 360), 640, 360, False)  # display-relative
    assert shot.size == (640, 360) and colours(shot) == {(0, 0, 200)}


def test_the_whole_desktop_is_put_together_at_the_retina_scale(mac) -> None:  # noqa: ANN001
    shot = capture.grab()
    assert shot.rect == Rect(0, -180, 3360, 1080) and shot.size == (6720, 2160)
    grabs = [c for c in mac.calls if c[0] == "captureImage"]
    assert grabs == [("captureImage", MAIN, (0, 0, 1440, 900), 2880, 1800, False),
                     ("captureImage", SIDE, (0, 0, 1920, 1080), 1920, 1080, False)]
    image = shot.to_pil()
    assert image.getpixel((10, 10)) == (0, 0, 0)  # above the main display: no screen there
    assert image.getpixel((10, 360 + 10)) == (10, 0, 0)  # the main display's top left corner
    assert image.getpixel((2880 + 10, 10)) == (70, 0, 0)  # the side display, scaled up 2x
    assert image.getpixel((2880 + 3830, 10)) == (0, 200, 0)


def test_a_refusal_reported_by_screencapturekit_is_the_permission_message(mac, qtbot) -> None:  # noqa: ANN001
    from desktop import messages
    from tests.desktop.conftest import make_rig
    from tests.fakes import ScriptedEngine

    mac.declined = True
    with pytest.raises(CaptureError) as refused:
        capture.grab(Rect(0, 0, 100, 100))
    assert refused.value.reason == "permission"
    rig = make_rig(ScriptedEngine(), grabber=capture.grab)
    try:
        with qtbot.waitSignal(rig.controller.status, timeout=5000,
                              check_params_cb=lambda text: text == messages.SCREEN_RECORDING_DENIED):
            rig.controller.handle_action("describe_window")
    finally:
        rig.client.shutdown()


def test_before_macos_14_coregraphics_grabs_at_pixel_resolution(mac, monkeypatch) -> None:  # noqa: ANN001
    del mac.sck.SCScreenshotManager  # macOS 13: ScreenCaptureKit without screenshots
    shot = capture.grab(Rect(100, 50, 800, 600))
    assert mac.calls[-1] == ("CGWindowListCreateImage", (100, 50, 800, 600), 1, 0, 1 | 2)  # not nominal
    assert shot.size == (1600, 1200)
