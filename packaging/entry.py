"""PyInstaller's script: the frozen `faultwatch` executable starts here.

PyInstaller needs a script path, not a console-script entry point, so this is the smallest
possible shim around `gui.launcher:main` (the same function `pip install` wires to `faultwatch`).
"""

import sys

from gui.launcher import main

if __name__ == "__main__":
    sys.exit(main())
