"""AssistantController: hotkey or photo -> capture -> engine -> spoken sentences. Owns the conversation.

Lives on the GUI thread; capture runs in its own thread and the engine in its own process, and
both report back through queued signals. Every request acknowledges at once (earcon + short
word), speaks the answer sentence by sentence while it streams, and can be stopped with one key
(speech and generation together). ``notify`` is the one way to tell the user something: it
speaks and/or announces (per settings), shows the status line and logs (never content above DEBUG).

Each capture or photo starts a new conversation (``Conversation.next``; MiniGPT-4 was trained on
one image per chat and its answers decay with more); follow-up questions stay in it. The one
before is kept whole until the new image has an answer: if the new image's request fails, it is
dropped and the earlier conversation is current again.

Seams for optional features (wired in ``desktop.integrations``): ``ask(question)`` (push-to-talk),
``read_text_handler`` (given a fresh capture of the screen) and ``context_provider`` (OCR),
``request_sent``, ``interrupted``, ``extra_actions``, ``speak_chunks`` (any spoken result).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from enum import StrEnum

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from desktop import capture, focus, messages, session
from desktop.capture import Capture, CaptureError, Rect
from desktop.conversation import Conversation
from desktop.command_keys import CommandKeys
from desktop.image_input import ImageRejected, Photo, new_image_id
from desktop.resources import question_for, question_label
from desktop.settings import CaptureTarget, Settings
from desktop.speech_output.speaker import Priority, Speaker
from desktop.speech_output import SpeechRouter
from desktop.utterances import SentenceSplitter
from engine.protocol import (
    Backend, Describe, ErrorKind, Failed, Finished, ForgetConversation, GenerationSettings, ImageInput, ImagesNeeded,
    LoadModel, ModelReady, Progress, Quantization, TextDelta,
)
from engine.store import model_choice

log = logging.getLogger(__name__)
Grabber = Callable[[Rect | None, str], Capture]


class State(StrEnum):
    IDLE = "idle"
    CAPTURING = "capturing"
    OPENING = "opening"  # a photo being read and decoded
    DESCRIBING = "describing"


class _CaptureSignals(QObject):
    captured = Signal(int, object, object)  # token, Capture, problem key or None
    failed = Signal(int, str)  # token, reason
    photo_ready = Signal(int, object)  # token, Photo
    photo_rejected = Signal(int, str)  # token, ImageRejected reason


_ACK = {"screen": messages.DESCRIBING_SCREEN, "window": messages.DESCRIBING_WINDOW,
        "monitor": messages.DESCRIBING_MONITOR, "region": messages.DESCRIBING_REGION,
        "focus": messages.DESCRIBING_FOCUS}
_CAPTURE_ACK = {"screen": messages.CAPTURING_SCREEN, "window": messages.CAPTURING_WINDOW,  # then the user asks
                "monitor": messages.CAPTURING_MONITOR, "region": messages.CAPTURING_REGION,
                "focus": messages.CAPTURING_FOCUS}
_PROBLEMS = {"black": messages.CAPTURE_BLACK, "uniform": messages.CAPTURE_UNIFORM, "blank": messages.CAPTURE_BLANK}


class AssistantController(QObject):
    status = Signal(str)  # every notification, for the status line
    answer_started = Signal()
    answer_delta = Signal(str)
    answer_finished = Signal(str)
    conversation_changed = Signal()
    transcript_requested = Signal(bool)  # True: position at the last answer
    question_requested = Signal()  # the user asked to type a question (focus allowed: requested)
    modal_requested = Signal(bool)  # grab (True) / release (False) the keyboard for layer/region keys
    state_changed = Signal(str)
    request_sent = Signal(object)  # each Describe sent (e.g. to OCR its new images afterwards)
    interrupted = Signal(bool)  # what was in flight was cancelled: True by Stop, False by a new request
    _notify_from_thread = Signal(str, object)  # notify called off the GUI thread: queued back to it

    def __init__(self, engine, speaker: Speaker, readers, earcons, settings: Settings,  # noqa: ANN001
                 grabber: Grabber = capture.grab, max_wait: float = 1.5) -> None:
        super().__init__()
        self.engine, self.speaker, self.earcons = engine, speaker, earcons
        self.output = SpeechRouter(speaker, readers)  # readers: a speech_output.ReaderWatch
        self.settings = settings
        self.grabber = grabber
        self.conversation = Conversation()
        self._previous: Conversation | None = None  # until the current one's image has an answer
        self.state = State.IDLE
        self.read_text_handler: Callable[[ImageInput], None] | None = None  # OCR a capture and speak it
        # Grounding text for a question, given the conversation's image ids (desktop.integrations).
        self.context_provider: Callable[[tuple[str, ...]], str] | None = None
        self.extra_actions: dict[str, Callable[[], None]] = {}  # e.g. "voice" -> start recording
        self.last_stats = None
        self.model_image_size: int | None = None  # the loaded model's input side (ModelReady)
        self.model_choice: model_choice.ModelChoice | None = None  # the model last sent to the engine
        self.timeline: dict[str, float] = {}
        self._splitter = SentenceSplitter(max_wait=max_wait)
        self._flush = QTimer(self, singleShot=True, timeout=self._flush_due)
        self._active: Describe | None = None
        self._shown_as = ""  # how the transcript shows the active request's question
        self._answer = ""
        self._spoken_first = False
        self._sentences = 0
        self._token = 0
        self._then: Callable[[Capture], None] = lambda shot: None  # what the capture in flight is for
        self._target = "screen"  # what the capture in flight was asked for
        self.keys = CommandKeys(self)
        self._last_progress = -1
        self._signals = _CaptureSignals()
        self._signals.captured.connect(self._on_captured)
        self._signals.failed.connect(self._on_capture_failed)
        self._signals.photo_ready.connect(self._on_photo_ready)
        self._signals.photo_rejected.connect(self._on_photo_rejected)
        engine.event.connect(self.on_event)
        engine.died.connect(self._on_engine_died)
        engine.hung.connect(self._on_engine_hung)
        engine.restarted.connect(self._on_engine_restarted)
        self._engine_hung = False
        engine.gave_up.connect(lambda: self.notify(messages.tr(messages.ENGINE_GAVE_UP), Priority.NOW))
        speaker.started.connect(self._on_speech_started)
        self._notify_from_thread.connect(self.notify)

    # ------------------------------------------------------------ telling the user
    def notify(self, text: str, priority: Priority = Priority.NEXT) -> None:
        """Safe from any thread: the speaker's player, the screen reader's bus connection and the
        status line belong to the GUI thread (touched from another one, Qt's socket notifiers
        spun and flooded the log), so a call from elsewhere (e.g. the excepthook) is queued."""
        if QThread.currentThread() != self.thread():
            self._notify_from_thread.emit(text, priority)
            return
        self.status.emit(text)
        log.debug("notify: %s", text)  # may contain content (a heard question): DEBUG only
        self._output(text, priority)

    def speak_chunks(self, chunks: list[str]) -> None:
        """Speak a result (e.g. OCR text) chunk by chunk, interrupting what was being said."""
        for i, chunk in enumerate(chunks):
            self._output(chunk, Priority.NOW if i == 0 else Priority.NORMAL, assertive=i == 0, content=True)

    def _voice_on(self) -> bool:
        """Whether Lumen's own voice speaks (else only the screen reader hears Lumen)."""
        return self.output.voice_on(self.settings.speech_output)

    def _output(self, text: str, priority: Priority, assertive: bool | None = None, content: bool = False) -> None:
        interrupt = priority is Priority.NOW if assertive is None else assertive
        self.output.say(text, priority, interrupt, self.settings.speech_output, content)

    def _acknowledge(self, text: str) -> None:
        self.earcons.play("ack")
        self.timeline["ack"] = time.monotonic()
        self.notify(messages.tr(text), Priority.NOW)

    def _set_state(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            self.state_changed.emit(state.value)

    # ------------------------------------------------------------ actions (hotkeys, buttons)
    def handle_action(self, action: str) -> None:
        self.timeline = {"hotkey": time.monotonic()}
        handlers: dict[str, Callable[[], None]] = {
            "command": self.keys.start_layer,
            "describe_screen": lambda: self.describe(self._screen_target()),
            "describe_window": lambda: self.describe("window"),
            "describe_monitor": lambda: self.describe("monitor"),
            "describe_focus": lambda: self.describe("focus"),
            "region": self.keys.start_region,
            "ask": self.request_question,
            "recall": self.recall,
            "stop": self.stop,
            "read_text": self.read_text,
            "layer_help": lambda: self.notify(messages.tr(messages.COMMAND_LAYER_HELP), Priority.NOW),
            "status": lambda: self.notify(self.doing(), Priority.NOW),
            "restart_engine": self.restart_engine,
        }
        handler = handlers.get(action) or self.extra_actions.get(action)
        if handler is None:
            log.warning("unknown action %r", action)
            return
        handler()

    def _screen_target(self) -> str:
        return "monitor" if self.settings.capture_target is CaptureTarget.MONITOR else "screen"

    def describe(self, target: str, rect: Rect | None = None, then_ask: bool = False) -> None:
        """Capture ``target`` ("screen", "window", "monitor", "focus", "region" with ``rect``) and
        describe it in a new conversation (``then_ask``: let the user type the question instead)."""
        ack = (_CAPTURE_ACK if then_ask else _ACK)[target]
        self._capture(target, rect, ack, lambda shot: self._describe_capture(shot, then_ask))

    def _capture(self, target: str, rect: Rect | None, ack: str, then: Callable[[Capture], None],
                 for_model: bool = True) -> None:
        """Acknowledge, capture ``target`` in the capture thread, then ``then(capture)`` (GUI thread)."""
        self._interrupt()
        self._acknowledge(ack)
        if not capture.capture_supported():
            self.fail(messages.CAPTURE_UNSUPPORTED)
            return
        self._token += 1
        self._then, self._target = then, target
        self._set_state(State.CAPTURING)
        cursor = capture.cursor_position() if target == "monitor" else None
        token, side, timeline = self._token, self.model_image_size if for_model else None, self.timeline
        capture.in_capture_thread(lambda: self._capture_job(token, target, rect, cursor, side, timeline))

    def _capture_job(self, token: int, target: str, rect: Rect | None, cursor,  # noqa: ANN001
                     side: int | None, timeline: dict[str, float]) -> None:
        """Capture thread: locate, grab, check, resize for the model. Only signals leave this function."""
        try:
            label = target
            if target == "window":
                rect = capture.active_window_rect()
                label = "window" if rect is not None else "screen"
            elif target == "focus":
                rect = focus.focused_rect()
                if rect is not None:  # grown around a small control: keep it on the screen
                    rect = rect.intersect(capture.monitors()[0])
                label = "focused control" if rect is not None else "screen"
            elif target == "monitor":
                found = capture.monitor_at(*cursor) if cursor else None
                rect, label = (found[1], f"monitor {found[0]}") if found else (None, "screen")
            shot, problem = capture.check_and_prepare(self.grabber(rect, label), side, timeline)
            self._signals.captured.emit(token, shot, problem)
        except CaptureError as exc:
            self._signals.failed.emit(token, exc.reason)
        except Exception:  # noqa: BLE001 - reported as a failed capture, never lost
            log.exception("capture failed")
            self._signals.failed.emit(token, "failed")

    def _on_captured(self, token: int, shot: Capture, problem: str | None) -> None:
        if token != self._token:
            return  # superseded or stopped
        self.timeline["captured"] = time.monotonic()
        self._set_state(State.IDLE)
        if problem is not None:
            self.fail(_PROBLEMS[problem])
            return
        if shot.label == "screen" and self._target in ("window", "monitor", "focus"):
            missing = messages.NO_FOCUSED_CONTROL if self._target == "focus" else messages.NO_ACTIVE_WINDOW
            if session.session_type() == "wayland":  # not "not found": it cannot be known there
                missing = messages.WAYLAND_WHOLE_SCREEN[self._target]
            self.notify(messages.tr(missing), Priority.NEXT)
        self._then(shot)

    def _describe_capture(self, shot: Capture, then_ask: bool) -> None:
        image_id = new_image_id()
        self._new_image(shot.to_image_input(image_id), shot.label, shot.model_input(image_id))
        if then_ask:
            self.request_question()
        else:
            self.ask(question_for(self.settings), acknowledged=True, shown_as=question_label(self.settings))

    def _new_image(self, image: ImageInput, label: str, model_input: ImageInput | None = None) -> None:
        """Start a new conversation with ``image``. The current one, if it has answers, stays in
        reserve until the image has one (``_settle``); one without answers is dropped."""
        old = self.conversation
        if old.entries:
            if self._previous is not None:
                self.engine.send(ForgetConversation(self._previous.id))
            self._previous = old
        elif old.images:
            self.engine.send(ForgetConversation(old.id))
        self.conversation = old.next()
        self.conversation.attach_image(image, label, model_input)
        self.conversation_changed.emit()

    def _settle(self) -> None:
        """The current conversation has an answer: the one kept in reserve is not needed any more."""
        if self._previous is not None:
            self.engine.send(ForgetConversation(self._previous.id))
            self._previous = None

    def _on_capture_failed(self, token: int, reason: str) -> None:
        if token == self._token:
            self._set_state(State.IDLE)
            self.fail({"unsupported": messages.CAPTURE_UNSUPPORTED,
                       "permission": messages.SCREEN_RECORDING_DENIED,
                       "accessibility": messages.ACCESSIBILITY_DENIED}.get(reason, messages.CAPTURE_FAILED))

    def open_photo(self, load: Callable[[int | None], Photo]) -> None:
        """A dropped, opened or pasted photo: acknowledge at once, read and decode it in the capture
        thread (``load(model_side)``, e.g. ``image_input.load_file``; a large picture takes
        seconds), then describe it or say why it cannot be used."""
        self.timeline = {"hotkey": time.monotonic()}
        self._interrupt()
        self._acknowledge(messages.DESCRIBING_PHOTO)
        self._token += 1
        self._set_state(State.OPENING)
        token, side = self._token, self.model_image_size
        capture.in_capture_thread(lambda: self._photo_job(token, load, side))

    def _photo_job(self, token: int, load: Callable[[int | None], Photo], side: int | None) -> None:
        """Capture thread: only signals leave this function."""
        try:
            self._signals.photo_ready.emit(token, load(side))
        except ImageRejected as exc:
            log.info("photo rejected: %s", exc.reason)
            self._signals.photo_rejected.emit(token, exc.reason)
        except Exception:  # noqa: BLE001 - reported as an unusable photo, never lost
            log.exception("opening the photo failed")
            self._signals.photo_rejected.emit(token, "unreadable")

    def _on_photo_ready(self, token: int, photo: Photo) -> None:
        if token != self._token:
            return  # superseded or stopped
        self._set_state(State.IDLE)
        self._new_image(photo.image, photo.label, photo.model_input)
        self.ask(question_for(self.settings), acknowledged=True, shown_as=question_label(self.settings))

    def _on_photo_rejected(self, token: int, reason: str) -> None:
        if token == self._token:
            self._set_state(State.IDLE)
            why = messages.tr(messages.IMAGE_REASONS.get(reason, messages.IMAGE_REASONS["corrupt"]))
            self.fail(messages.tr(messages.PHOTO_REJECTED).format(reason=why))

    def ask(self, question: str, context: str = "", acknowledged: bool = False, shown_as: str = "") -> bool:
        """Ask about the conversation's images (pending ones attached). The push-to-talk seam.
        ``shown_as``: the transcript's words for a built-in question (the preset prompt)."""
        question = question.strip()
        if not question:
            self.notify(messages.tr(messages.EMPTY_QUESTION), Priority.NOW)
            return False
        if not self.conversation.has_images:
            self.notify(messages.tr(messages.NO_IMAGE_YET), Priority.NOW)
            return False
        if not acknowledged:
            self._interrupt()
            self.timeline.setdefault("hotkey", time.monotonic())
            self._acknowledge(messages.ASKING)
        settings = GenerationSettings(max_new_tokens=self.settings.max_new_tokens)
        if not context and self.context_provider is not None:
            context = self.context_provider(tuple(self.conversation.images))
        request = self.conversation.build_request(self.engine.new_request_id(), question, settings, context,
                                                  self.model_image_size)
        self.timeline["sending"] = time.monotonic()
        if not self.engine.send(request):
            self.fail(messages.ENGINE_NOT_RUNNING)
            return False
        self.conversation.mark_sent(request)
        self.timeline["sent"] = time.monotonic()
        self._active, self._answer, self._spoken_first, self._sentences = request, "", False, 0
        self._shown_as = shown_as
        self._splitter.reset()
        self._set_state(State.DESCRIBING)
        self.answer_started.emit()
        self.earcons.start_waiting()
        self.request_sent.emit(request)
        return True

    def doing(self) -> str:
        """What Lumen is doing, in words (the "what are you doing?" command)."""
        if self.state is State.CAPTURING:
            return messages.tr(messages.DOING_CAPTURING)
        if self.state is State.OPENING:
            return messages.tr(messages.DOING_OPENING)
        if self._active is None:
            return messages.tr(messages.DOING_NOTHING)
        if not self._spoken_first:
            return messages.tr(messages.DOING_WAITING)
        return messages.tr(messages.DOING_ANSWERING).format(count=self._sentences)

    def request_question(self) -> None:
        """Let the user type a question: about the last image, or with no image yet about a fresh
        capture of the screen (taken now, asked together with the question)."""
        if not self.conversation.has_images:
            self.describe(self._screen_target(), then_ask=True)
            return
        self.question_requested.emit()
        self.notify(messages.tr(messages.ASK_PROMPT), Priority.NOW)

    def recall(self) -> None:
        """Open the transcript at the last answer (a screen reader reads it there) and, when
        Lumen's voice is on, say the answer again."""
        answer = self.conversation.last_answer
        if answer is None:
            self.notify(messages.tr(messages.NO_ANSWER_YET), Priority.NOW)
            return
        self._interrupt()
        self.transcript_requested.emit(True)
        if self._voice_on():
            splitter = SentenceSplitter()
            for i, sentence in enumerate(splitter.feed(answer) + splitter.finish()):
                self.speaker.say(sentence, Priority.NOW if i == 0 else Priority.NORMAL)

    def read_text(self) -> None:
        """Read the words of the screen as it is now (a fresh capture, outside the conversation)."""
        handler = self.read_text_handler
        if handler is None:
            self.notify(messages.error_text(ErrorKind.UNAVAILABLE), Priority.NOW)
            return
        self._capture(self._screen_target(), None, messages.READING_TEXT,
                      lambda shot: handler(shot.to_image_input(new_image_id())), for_model=False)

    def stop(self) -> None:
        """Stop speech and generation together."""
        busy = self._active is not None or self.state in (State.CAPTURING, State.OPENING) or self.output.speaking
        self.keys.end()
        self._interrupt(stopped=True)
        self.earcons.play("stopped" if busy else "error")
        self.notify(messages.tr(messages.STOPPED if busy else messages.NOTHING_TO_STOP), Priority.NOW)

    def new_conversation(self) -> None:
        """Forget every image and answer so far (the transcript starts empty)."""
        self._interrupt()
        self._settle()
        self.engine.send(ForgetConversation(self.conversation.id))
        self.conversation = Conversation()
        self.conversation_changed.emit()
        self.notify(messages.tr(messages.NEW_CONVERSATION), Priority.NOW)

    def interrupt(self) -> None:
        """Silently cancel what is in flight (e.g. before recording a spoken question)."""
        self.keys.end()
        self._interrupt()

    def _interrupt(self, stopped: bool = False) -> None:
        """Cancel the capture and answer in flight and silence speech (a new request or a stop)."""
        self._token += 1
        self.interrupted.emit(stopped)
        if self._active is not None:
            self.engine.cancel(self._active.request_id)
            self._finish_answer(self._answer, cancelled=True)
        self.output.stop()  # the own voice and what the screen reader was given
        self.earcons.stop_waiting()
        self._flush.stop()
        self._splitter.reset()
        self._set_state(State.IDLE)

    def fail(self, text: str) -> None:
        self.earcons.stop_waiting()
        self.earcons.play("error")
        self.notify(messages.tr(text), Priority.NOW)

    # ------------------------------------------------------------ engine events
    def on_event(self, event: object) -> None:
        if isinstance(event, TextDelta):
            if self._active is not None and event.request_id == self._active.request_id:
                self._on_delta(event.text)
        elif isinstance(event, Finished):
            if self._active is not None and event.request_id == self._active.request_id:
                self.last_stats = event.stats
                self._on_finished(event)
        elif isinstance(event, ImagesNeeded):
            if self._active is not None and event.request_id == self._active.request_id:
                self._send_images(event.image_ids)
        elif isinstance(event, Failed):
            self._on_failed(event)
        elif isinstance(event, Progress):
            self._on_progress(event)
        elif isinstance(event, ModelReady):
            self.model_image_size = event.image_size
            choice = self.model_choice or model_choice.ModelChoice(None, model_choice.Origin.NONE)
            self.notify(messages.model_ready_text(choice, event.device, event.quantization), Priority.NEXT)
            if "memory_unknown" in event.warnings:  # the engine chose the safe precision unchecked
                self.notify(messages.tr(messages.MEMORY_UNKNOWN), Priority.NEXT)

    def _on_delta(self, text: str) -> None:
        self.timeline.setdefault("first_delta", time.monotonic())
        self._answer += text
        self.answer_delta.emit(text)
        for sentence in self._splitter.feed(text):
            self._speak_answer(sentence)
        due = self._splitter.seconds_until_due()
        if due is not None and not self._flush.isActive():
            self._flush.start(int(due * 1000) + 10)

    def _flush_due(self) -> None:
        for sentence in self._splitter.flush_due():
            self._speak_answer(sentence)
        due = self._splitter.seconds_until_due()
        if due is not None and self._active is not None:
            self._flush.start(int(due * 1000) + 10)

    def _speak_answer(self, sentence: str) -> None:
        priority = Priority.NORMAL
        self._sentences += 1
        if not self._spoken_first:  # the acknowledgement has done its job: the answer cuts it short
            self._spoken_first = True
            self.timeline["first_sentence"] = time.monotonic()
            self.earcons.stop_waiting()
            priority = Priority.NOW
        log.debug("answer sentence: %s", sentence)
        self._output(sentence, priority, assertive=False, content=True)  # answers queue politely in a reader

    def _on_finished(self, event: Finished) -> None:
        self._flush.stop()
        for sentence in self._splitter.finish():
            self._speak_answer(sentence)
        self._finish_answer(event.text if not event.cancelled else self._answer, event.cancelled)
        if not event.cancelled:
            self.earcons.play("done")
            self.notify(messages.tr(messages.DONE), Priority.NORMAL)  # after the answer's last sentence

    def _finish_answer(self, text: str, cancelled: bool) -> None:
        request, self._active = self._active, None
        self.earcons.stop_waiting()
        self._set_state(State.IDLE)
        if request is not None and text.strip():
            self.conversation.record_exchange(request, text.strip(), cancelled, self._shown_as)
            self._settle()
            self.conversation_changed.emit()
        self.answer_finished.emit(text)

    def _send_images(self, image_ids: tuple[str, ...]) -> None:
        """The engine lacks these images (it restarted, or evicted them): the same request again,
        with their bytes. Asked twice for the same image, or for one we do not have, it fails."""
        request = self._active
        assert request is not None
        already = {image.image_id for image in request.images}
        if already & set(image_ids) or not set(image_ids) <= set(self.conversation.images):
            self._on_failed(Failed(request.request_id, ErrorKind.BAD_REQUEST, f"images still missing: {image_ids}"))
            return
        request = replace(request, images=self.conversation.model_images(image_ids, self.model_image_size))
        if not self.engine.send(request):
            self._on_failed(Failed(request.request_id, ErrorKind.INTERNAL, "engine pipe closed"))
            return
        self.conversation.mark_sent(request)
        self._active = request

    def _on_failed(self, event: Failed) -> None:
        log.warning("engine failure %s: %s", event.kind, event.detail)
        if event.request_id is not None and (self._active is None or event.request_id != self._active.request_id):
            return  # a request we already gave up on
        if event.request_id is not None:
            request, self._active = self._active, None
            self._set_state(State.IDLE)
            if event.kind is not ErrorKind.NO_MODEL_LOADED:
                self._drop_failed_images(request)
        self.fail(messages.error_text(event.kind, self._model_file_name(event.path)))

    def _model_file_name(self, path: str | None) -> str | None:
        """``path`` as the user knows it: relative to the model folder (e.g. "llm/config.json")."""
        if not path:
            return None
        folder = self.model_choice.path if self.model_choice is not None else None
        try:
            return Path(path).relative_to(folder).as_posix() if folder else Path(path).name
        except ValueError:
            return Path(path).name

    def _drop_failed_images(self, request: Describe) -> None:
        """A request that brought new images failed (a photo too large for memory, a corrupt one):
        drop those images, so the next question does not fail the same way, and go back to the
        conversation before them if they were all it had."""
        if not request.new_image_ids:
            return
        failed = self.conversation
        failed.drop_images(request.new_image_ids)
        if not failed.images and not failed.entries:
            self.engine.send(ForgetConversation(failed.id))
            self.conversation = self._previous or failed
            self._previous = None
        self.conversation_changed.emit()

    def _on_progress(self, event: Progress) -> None:
        if event.stage != "loading":
            return
        step = -1 if event.fraction is None else int(event.fraction * 4)  # announce each quarter
        if step != self._last_progress:
            self._last_progress = step
            self.notify(messages.progress_text(event.stage, event.fraction), Priority.NORMAL)

    def _on_speech_started(self, text: str) -> None:
        if self._spoken_first and "speech_start" not in self.timeline:
            self.timeline["speech_start"] = time.monotonic()

    def _on_engine_died(self) -> None:
        self._interrupt()  # the partial answer is kept; the restart message follows
        self.earcons.play("error")

    def _on_engine_hung(self) -> None:
        self._engine_hung = True  # ``died`` and ``restarted`` follow: say why it was restarted

    def _on_engine_restarted(self) -> None:
        hung, self._engine_hung = self._engine_hung, False
        self.notify(messages.tr(messages.ENGINE_HUNG if hung else messages.ENGINE_RESTARTED), Priority.NOW)

    def restart_engine(self) -> None:
        """The user's "try again" after the engine kept dying (``EngineClient.gave_up``)."""
        self._engine_hung = False
        if self.engine.retry():
            self._last_progress = -1
            self.notify(messages.tr(messages.ENGINE_STARTING_AGAIN), Priority.NOW)
        else:
            self.notify(messages.tr(messages.ENGINE_RUNNING), Priority.NOW)

    # ------------------------------------------------------------ model
    def load_model(self) -> bool:
        """Load the model ``engine.store.model_choice`` picks for the settings; False when there is none."""
        self.model_choice = choice = model_choice.choose(self.settings.model_dir, translate=messages.tr)
        if choice.notice:
            self.notify(choice.notice, Priority.NEXT)
        if choice.path is None:
            self.notify(f"{messages.tr(messages.NO_MODEL_CONFIGURED)} {messages.tr(messages.SET_UP_MINIGPT4)}",
                        Priority.NEXT)
            return False
        log.info("loading %s (%s): %s", choice.title, choice.origin.value, choice.path)
        self._last_progress = -1
        self.engine.send(LoadModel(str(choice.path), Quantization(self.settings.quantization), self.settings.device,
                                   backend=Backend(self.settings.backend)))
        self.notify(messages.tr(messages.MODEL_LOADING), Priority.NEXT)
        return True
