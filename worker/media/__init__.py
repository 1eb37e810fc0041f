"""Media I/O: streamed video decoding, photo loading and MP4 encoding (PyAV, Pillow)."""
