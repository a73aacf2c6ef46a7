"""Stand-in for PySide6.QtOpenGL in the bundle (the real binding is 8.7 MB).

pyqtgraph imports the module by name at import time but uses it only when OpenGL drawing is on,
which Faultwatch never turns on. Any use is a clear error rather than a silent wrong result.
"""


def __getattr__(name: str) -> object:
    raise ImportError(f"PySide6.QtOpenGL.{name}: OpenGL drawing is not part of the Faultwatch bundle")
