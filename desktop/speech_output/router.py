"""Where each utterance goes: the screen reader, Lumen's own voice, or both (the speech output setting).

Never silent: with "screen reader" chosen and none running, or when the reader's path fails, the
own voice says it. ``stop`` silences the own voice and cancels what Lumen gave the reader.
"""

from __future__ import annotations

import logging
import time

from desktop.settings import SpeechOutput
from desktop.speech_output.speaker import Priority, Speaker
from desktop.speech_output.reader import ScreenReader

log = logging.getLogger(__name__)
# No reader path (SSIP, NVDA's controller, FSAPI) says whether it is still speaking, so how long it reads
# what Lumen gave it is estimated, on the slow side (about 150 words a minute): a Stop pressed while the
# reader still reads an answer cancels it and says "Stopped", not "Nothing to stop".
READER_CHARS_PER_SECOND = 12.0


class SpeechRouter:
    def __init__(self, speaker: Speaker, readers) -> None:  # noqa: ANN001 - a ReaderWatch (``current``, ``forget``)
        self.speaker, self.readers = speaker, readers
        self._reader_used: ScreenReader | None = None  # the reader Lumen spoke through since the last stop
        self._reader_busy_until = 0.0  # when the reader should be done reading the content it was given

    def say(self, text: str, priority: Priority, interrupt: bool, mode: SpeechOutput, content: bool = False) -> None:
        """``priority`` orders the own voice's queue; ``interrupt`` cuts what the reader is saying
        (polite messages wait for it). ``content`` (an answer, text read out) is what Stop stops."""
        voice = mode in (SpeechOutput.VOICE, SpeechOutput.BOTH)
        if mode is not SpeechOutput.VOICE:
            reader = self.readers.current()
            if reader is None or not self._through(reader, text, interrupt):
                voice = True  # no reader runs now, or it failed: the own voice speaks whatever the setting
                self.readers.announce(text, interrupt)  # heard by a reader Lumen cannot address, if focused
            elif content:
                now = time.monotonic()
                start = now if interrupt else max(now, self._reader_busy_until)
                self._reader_busy_until = start + len(text) / READER_CHARS_PER_SECOND
        if voice:
            self.speaker.say(text, priority)

    @property
    def speaking(self) -> bool:
        """The own voice speaks, or the reader is (by estimate) still reading content Lumen gave it."""
        return self.speaker.speaking or (self._reader_used is not None and time.monotonic() < self._reader_busy_until)

    def voice_on(self, mode: SpeechOutput) -> bool:
        """Whether the own voice speaks now (chosen, or no reader runs)."""
        return mode in (SpeechOutput.VOICE, SpeechOutput.BOTH) or self.readers.current() is None

    def _through(self, reader: ScreenReader, text: str, interrupt: bool) -> bool:
        try:
            reader.output(text, interrupt)
        except Exception as exc:  # noqa: BLE001 - ReaderError, or a back-end's bug: never silent, never a crash
            log.warning("%s failed, the own voice speaks: %r", reader.name, exc)
            self.readers.forget()
            return False
        self._reader_used = reader
        return True

    def stop(self) -> None:
        self.speaker.stop()
        reader, self._reader_used = self._reader_used, None
        self._reader_busy_until = 0.0
        if reader is not None:
            try:
                reader.cancel()
            except Exception as exc:  # noqa: BLE001
                log.warning("%s could not stop speaking: %r", reader.name, exc)
