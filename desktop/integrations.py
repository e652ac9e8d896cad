"""Wires the optional features into the controller: screen text (OCR) and voice questions.

* Screen text (``desktop.screen_text``): "read the text" sends ``ReadText`` for a fresh capture of
  the screen and speaks the lines in reading order. With OCR on (Settings, Capture), each new image
  is also read in the background right *after* its first description is requested (the engine runs
  OCR off the describing path, so no answer waits for it), and follow-up questions are grounded in
  that text (``Describe.context``). Stop cancels any OCR in flight, a newer image the background
  one, and a new request an unfinished "read the text".
* Voice questions (``desktop.microphone``): hold the voice hotkey, speak, release; the recording
  is transcribed by the engine (``Transcribe``) and asked as a typed question would be.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from desktop import messages
from desktop.speech_output.speaker import Priority
from engine.protocol import Describe, ErrorKind, Failed, ImageInput, ReadText, TextRead, Transcribe, Transcribed


class ScreenTextFeature(QObject):
    def __init__(self, lumen) -> None:  # noqa: ANN001 - a desktop.app.LumenApp
        super().__init__()
        from desktop import screen_text

        self._st = screen_text
        self.lumen = lumen
        self.text = screen_text.ScreenText(grounding=lumen.settings.ocr)
        self._conversation_id = lumen.controller.conversation.id
        c = lumen.controller
        c.read_text_handler = self.read_text
        c.context_provider = self.context_for
        c.request_sent.connect(self._after_describe)
        c.interrupted.connect(self._on_interrupted)
        lumen.engine.event.connect(self._on_event)

    def _sync(self) -> None:
        conversation = self.lumen.controller.conversation
        self.text.grounding = self.lumen.controller.settings.ocr
        if conversation.id != self._conversation_id:  # a new conversation: old texts are gone
            self._conversation_id = conversation.id
            self._cancel(self.text.forget())

    def _cancel(self, request_ids: list[int]) -> None:
        for request_id in request_ids:
            self.lumen.engine.cancel(request_id)

    def context_for(self, image_ids: tuple[str, ...]) -> str:
        self._sync()
        return self.text.context_for(image_ids)

    def read_text(self, image: ImageInput) -> None:
        """The controller's "read the text", with a capture of the screen taken just now."""
        self._send(image, self._st.Purpose.READ)

    def _send(self, image: ImageInput, purpose: object) -> None:
        engine = self.lumen.engine
        request_id = engine.new_request_id()
        self.text.requested(request_id, image.image_id, purpose)
        engine.send(ReadText(request_id, image, background=purpose == self._st.Purpose.GROUND))

    def _on_interrupted(self, stopped: bool) -> None:
        """Stop ends every OCR in flight; any new request ends a "read the text" (its speech is cut)."""
        purposes = None if stopped else (self._st.Purpose.READ,)
        self._cancel(self.text.cancel_pending(purposes))

    def _after_describe(self, request: Describe) -> None:
        self._sync()
        if request.new_image_ids:  # a newer image: the background OCR of older ones is not wanted
            self._cancel(self.text.cancel_pending((self._st.Purpose.GROUND,)))
        images = self.lumen.controller.conversation.images
        for image_id in images:  # new images, and any whose OCR a Stop cancelled
            if self.text.needs_ocr(image_id):
                self._send(images[image_id], self._st.Purpose.GROUND)

    def _on_event(self, event: object) -> None:
        if isinstance(event, TextRead):
            result = self.text.on_text_read(event)
            if result is not None and result.purpose == self._st.Purpose.READ:
                self._speak(result.lines)
        elif isinstance(event, Failed):
            result = self.text.on_failed(event.request_id)
            if result is not None and result.purpose == self._st.Purpose.READ:
                text = messages.OCR_UNAVAILABLE if event.kind is ErrorKind.UNAVAILABLE else messages.error_text(event.kind)
                self.lumen.controller.notify(messages.tr(text), Priority.NOW)

    def _speak(self, lines: tuple) -> None:
        c = self.lumen.controller
        c.status.emit(self._st.reading_summary(lines))
        c.speak_chunks([self._st.reading_summary(lines), *self._st.reading_chunks(lines)])


class VoiceFeature(QObject):
    def __init__(self, lumen) -> None:  # noqa: ANN001
        super().__init__()
        from desktop import microphone
        from desktop.speech_model_choice import SpeechModelChooser

        self._vi = microphone
        self.lumen = lumen
        self.recorder = microphone.VoiceRecorder(parent=self)
        self.chooser = SpeechModelChooser()  # which Whisper model: the settings' choice, checked per question
        self._pending: int | None = None
        self._question: tuple[bytes, object] | None = None  # the recording and its SpeechChoice, until answered
        c = lumen.controller
        c.extra_actions["voice"] = self.recorder.press
        lumen.hotkeys.released.connect(lambda action: self.recorder.release() if action == "voice" else None)
        self.recorder.recording_started.connect(self._on_started)
        self.recorder.recorded.connect(self._on_recorded)
        self.recorder.failed.connect(self._on_failed)
        lumen.engine.event.connect(self._on_event)

    def _on_started(self) -> None:
        c = self.lumen.controller
        c.interrupt()  # speech must not be recorded as the question
        c.earcons.play("ack")
        c.status.emit(messages.tr(messages.LISTENING))

    def _on_recorded(self, wav: bytes, choice=None) -> None:  # noqa: ANN001 - a speech_model_choice.SpeechChoice
        settings, c = self.lumen.controller.settings, self.lumen.controller
        choice = choice or self.chooser.choose(settings.speech_model, settings.speech_language)
        if choice.refusal:
            c.notify(choice.refusal, Priority.NOW)
            return
        engine = self.lumen.engine
        self._pending, self._question = engine.new_request_id(), (wav, choice)
        engine.send(Transcribe(self._pending, wav, settings.speech_language, model_path=choice.model_path))
        c.notify(f"{choice.notice} {messages.tr(messages.RECOGNISING)}" if choice.notice else messages.tr(messages.RECOGNISING),
                 Priority.NOW)

    def _on_failed(self, reason: str) -> None:
        self.lumen.controller.notify(messages.voice_failure_text(reason), Priority.NOW)

    def _on_event(self, event: object) -> None:
        if isinstance(event, Transcribed) and event.request_id == self._pending:
            self._pending, self._question = None, None
            c = self.lumen.controller
            c.notify(messages.tr(messages.HEARD).format(text=event.text), Priority.NOW)
            c.ask(event.text, acknowledged=True)
        elif isinstance(event, Failed) and event.request_id == self._pending and self._pending is not None:
            question, self._pending, self._question = self._question, None, None
            reason = self._vi.failure_reason(event)
            if reason == "model_damaged" and question is not None:  # recognise it again with the bundled model
                wav, used = question
                self._on_recorded(wav, self.chooser.after_damage(used, self.lumen.controller.settings.speech_language))
                return
            text = messages.tr(messages.VOICE_UNAVAILABLE) if reason == "unavailable" else messages.voice_failure_text(reason)
            self.lumen.controller.notify(text, Priority.NOW)


def install(lumen) -> list[QObject]:  # noqa: ANN001
    return [ScreenTextFeature(lumen), VoiceFeature(lumen)]
