"""Faultwatch desktop console (PySide6). Presentation only; decisions live in core."""
