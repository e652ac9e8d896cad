"""The torch-free setup side: model catalogue, model and speech-model stores, downloads, official files,
conversion process, hardware detection and the ``lumen models`` CLI. Runs in the desktop process and the CLI,
so nothing here imports torch at module level."""
