import pytest
from PIL import Image, ImageDraw

from desktop import capture
from desktop.capture import Capture, Rect, check_capture, grid_cell
from desktop.region import RegionNavigator


def shot(image: Image.Image) -> Capture:
    return Capture(image.tobytes(), image.size, Rect(0, 0, *image.size), "screen")


def test_black_uniform_and_blank_captures_are_refused() -> None:
    assert check_capture(shot(Image.new("RGB", (1920, 1080), (0, 0, 0)))) == "black"
    assert check_capture(shot(Image.new("RGB", (1920, 1080), (0, 90, 160)))) == "uniform"
    almost = Image.new("RGB", (1920, 1080), (255, 255, 255))
    ImageDraw.Draw(almost).point((5, 5), fill=(0, 0, 0))  # a stray pixel is still nothing to describe
    assert check_capture(shot(almost)) in ("uniform", "blank")
    page = Image.new("RGB", (1920, 1080), (255, 255, 255))
    ImageDraw.Draw(page).text((100, 100), "Dear bank, please find attached my statement.", fill=(0, 0, 0))
    assert check_capture(shot(page)) is None  # one line of small text is content


def test_grid_cells_follow_the_number_pad() -> None:
    whole = Rect(0, 0, 1920, 1080)
    assert grid_cell(whole, 7) == Rect(0, 0, 640, 360)
    assert grid_cell(whole, 3) == Rect(1280, 720, 640, 360)
    assert grid_cell(whole, 5) == Rect(640, 360, 640, 360)
    assert grid_cell(Rect(0, 0, 90, 90), 1) is None  # too small to zoom
    assert grid_cell(whole, 0) is None


def test_region_navigator_zooms_and_backs_out() -> None:
    nav = RegionNavigator(Rect(-1920, 0, 3840, 1080))  # two monitors, one left of the primary
    assert nav.key("7").rect == Rect(-1920, 0, 1280, 360)
    assert nav.key("3").rect == Rect(-1067, 240, 427, 120) and nav.depth == 2  # cells tile exactly
    assert nav.key("backspace").rect == Rect(-1920, 0, 1280, 360)
    assert nav.key("enter").action == "describe" and nav.key("q").action == "ask"
    assert nav.key("escape").action == "cancel" and nav.key("z").action == "ignored"


@pytest.mark.display
def test_real_grab_every_monitor_and_a_region(qtbot) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QLabel

    label = QLabel("Lumen capture test")
    label.setStyleSheet("background: rgb(250, 20, 20)")
    label.setGeometry(50, 60, 200, 100)
    qtbot.addWidget(label)
    label.show()
    qtbot.waitExposed(label)
    whole, monitors = capture.monitors()
    assert monitors and whole.width >= monitors[0].width
    full = capture.grab()
    assert full.size == (whole.width, whole.height) and len(full.rgb) == whole.width * whole.height * 3
    red = (250, 20, 20)
    qtbot.waitUntil(lambda: capture.grab(Rect(60, 70, 20, 10)).to_pil().getpixel((5, 5)) == red, timeout=3000)
    part = capture.grab(Rect(60, 70, 20, 10), "region")
    assert part.size == (20, 10) and part.label == "region" and part.to_pil().getpixel((5, 5)) == red
    assert capture.monitor_at(10, 10)[0] == 1


@pytest.mark.display
def test_active_window_is_found_on_x11(qtbot) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QLineEdit

    window = QLineEdit("focused window")
    window.setGeometry(300, 200, 400, 120)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(lambda: capture.active_window_rect() is not None
                    and capture.active_window_rect().width == 400, timeout=3000)
    rect = capture.active_window_rect()
    assert (rect.left, rect.top, rect.width, rect.height) == (300, 200, 400, 120)


@pytest.mark.display
def test_each_thread_keeps_its_own_mss_until_the_layout_changes() -> None:
    import threading

    seen: dict[str, list[int]] = {"a": [], "b": []}

    def grab_twice(name: str) -> None:
        for _ in range(2):
            capture.grab(Rect(0, 0, 8, 8))
            seen[name].append(id(capture._local.sct))

    threads = [threading.Thread(target=grab_twice, args=(n,)) for n in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["a"][0] == seen["a"][1] and seen["b"][0] == seen["b"][1]  # reused within a thread
    capture.grab(Rect(0, 0, 8, 8))
    before = capture._local.sct
    capture.invalidate_grabbers()
    capture.grab(Rect(0, 0, 8, 8))
    assert capture._local.sct is not before  # a fresh instance after a layout change


def test_the_model_view_is_the_engine_s_own_first_preprocessing_step() -> None:
    import numpy as np
    from PIL import Image

    from engine.image_io import model_input_image

    pixels = np.random.default_rng(1).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    full = shot(Image.fromarray(pixels, "RGB"))
    assert full.model_input("x") is None  # not prepared: the full image is all there is
    view = full.for_model(224).model_input("x")
    assert (view.image_id, view.encoding, view.size) == ("x", "rgb", (224, 224))
    assert view.data == model_input_image(Image.fromarray(pixels, "RGB"), 224).tobytes()
    assert full.to_pil().tobytes() == pixels.tobytes()


class RecordedCoreGraphics:
    def __init__(self, granted: bool, grant_on_request: bool = False) -> None:
        self.calls, self.granted, self.grant_on_request = [], granted, grant_on_request

    def CGPreflightScreenCaptureAccess(self) -> bool:  # noqa: N802
        self.calls.append("CGPreflightScreenCaptureAccess")
        return self.granted

    def CGRequestScreenCaptureAccess(self) -> bool:  # noqa: N802
        self.calls.append("CGRequestScreenCaptureAccess")
        return self.grant_on_request


def test_macos_screen_recording_permission_is_checked_then_requested() -> None:
    from desktop.session import screen_recording_allowed

    granted = RecordedCoreGraphics(True)
    assert screen_recording_allowed(request=True, cg=granted) and granted.calls == ["CGPreflightScreenCaptureAccess"]
    denied = RecordedCoreGraphics(False)
    assert not screen_recording_allowed(cg=denied) and denied.calls == ["CGPreflightScreenCaptureAccess"]
    asked = RecordedCoreGraphics(False)
    assert not screen_recording_allowed(request=True, cg=asked)
    assert asked.calls == ["CGPreflightScreenCaptureAccess", "CGRequestScreenCaptureAccess"]


def test_without_screen_recording_permission_lumen_says_what_to_enable(qtbot, monkeypatch) -> None:  # noqa: ANN001
    """macOS without the permission grabs only the wallpaper, which Lumen then described."""
    from desktop import messages, session
    from tests.desktop.conftest import make_rig
    from tests.fakes import ScriptedEngine

    monkeypatch.setattr(session, "screen_recording_allowed", lambda request=False, cg=None: False)
    rig = make_rig(ScriptedEngine(), grabber=capture.grab)
    try:
        with qtbot.waitSignal(rig.controller.status, timeout=5000,
                              check_params_cb=lambda text: text == messages.SCREEN_RECORDING_DENIED):
            rig.controller.handle_action("describe_screen")
        assert not rig.engine.requests or all(type(r).__name__ != "Describe" for r in rig.engine.requests)
    finally:
        rig.client.shutdown()
