import subprocess, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[2]

def test_core_passes_strict_mypy() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:]
