"""Reading the screen without the language model: OCR (with its reading order) and speech recognition.

Run in the engine process; the desktop imports only their pure, dependency-light helpers."""
