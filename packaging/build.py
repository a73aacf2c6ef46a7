#!/usr/bin/env python3
"""Build the Faultwatch bundle with PyInstaller and prove the frozen executable works.

    packaging/build.py                 build dist/faultwatch/ (one folder), then smoke-test it
    packaging/build.py --test-only     smoke-test an existing dist/faultwatch/ (CI, `make package-test`)
    packaging/build.py --startup       start-to-first-paint of the existing build vs. source (median of 3)
    packaging/build.py --onefile       also build dist/faultwatch-onefile (--startup then times it too)
    packaging/build.py --compare       also build with PyInstaller's defaults (no trimming): size delta
    packaging/build.py --icon          re-render resources/faultwatch.png from resources/faultwatch.svg
    packaging/build.py --with-openblas numpy as installed (with OpenBLAS, +27 MB), no numpy wheel built

numpy comes from a wheel of the installed version built here without BLAS/LAPACK and without CPU
dispatch (NUMPY_SETUP_ARGS; the first build compiles it: about 5 min of CPU, needs gcc and g++; it is
kept in ~/.cache/faultwatch-build/). The spec takes numpy's extension modules from it, so OpenBLAS
stays out of the bundle.

The smoke test runs the built executable the way a user would: `--version`, `--self-test` (a full
fail → breaker open → restart → recovered cycle on a simulated device, which exercises aiohttp, the
journal and the engine), `--check-config` on the example configs and on a broken one,
`--headless --demo` for a moment, and the GUI on the demo rack with `--startup-probe` (Qt, qasync,
pyqtgraph and the Qt plugins inside the bundle; again on xcb under Xvfb when xvfb-run exists).
Startup time is reported, never enforced here: CI machines are too noisy for a hard limit. Every run gets a temporary state and config directory, and QT_QPA_PLATFORM=offscreen, so
it needs no display and never touches the user's files. Any failure exits non-zero with the
command, its exit code and its output.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "faultwatch.spec"
DIST = ROOT / "dist"
BUILD = ROOT / "build"
BUNDLE = DIST / "faultwatch"
EXECUTABLE = BUNDLE / ("faultwatch.exe" if os.name == "nt" else "faultwatch")
ONEFILE = DIST / ("faultwatch-onefile.exe" if os.name == "nt" else "faultwatch-onefile")
STARTUP_TARGET_S = 1.5
PROBE_RE = re.compile(r"^startup_to_first_paint_s=([0-9.]+)\s*$", re.M)
# What the GUI may print on stderr during a start on the demo rack: log lines below ERROR (the demo's
# flaky devices may log warnings), and the offscreen platform's harmless complaint. Anything else
# (a Qt plugin that failed to load, an image format missing, a Python warning, a traceback) fails.
GUI_STDERR_ALLOWED = [
    re.compile(r"\d{4}-\d\d-\d\d [\d:,]+ (DEBUG|INFO|WARNING)\s+\S+: .*"),
    re.compile(r"This plugin does not support propagateSizeHints\(\)"),
]

# Files the trimmed bundle must not contain (the spec's exclusions, checked so they cannot regress
# silently when PyInstaller, its hooks or PySide6 change what they collect).
MUST_NOT_CONTAIN = [
    "_internal/PySide6/QtNetwork*", "_internal/PySide6/QtTest*",
    "_internal/PySide6/QtQml*", "_internal/PySide6/QtQuick*",
    "_internal/PySide6/Qt/lib/libQt6Network*", "_internal/PySide6/Qt/lib/libQt6Qml*",
    "_internal/PySide6/Qt/lib/libQt6Quick*", "_internal/PySide6/Qt/lib/libQt6WebEngine*",
    "_internal/PySide6/Qt/translations/*", "_internal/PySide6/Qt/plugins/platformthemes/libqgtk3*",
    "_internal/PySide6/Qt/plugins/platforms/libqeglfs*", "_internal/pyqtgraph/opengl/*",
    "_internal/tkinter/*", "_internal/matplotlib/*", "_internal/pytest/*", "_internal/_pytest/*",
    "_internal/hypothesis/*", "_internal/mypy/*", "_internal/httpx/*",
    "_internal/PySide6/QtOpenGL.abi3.so", "_internal/python3.11/lib-dynload/_codecs_jp*", "_internal/libreadline*",
    "_internal/pydantic_core/*", "_internal/numpy/random/*", "_internal/numpy/_core/_simd*",
    "_internal/pytz/zoneinfo/*", "_internal/PySide6/Qt/plugins/wayland-shell-integration/libivi-shell.so",
    "_internal/libdbus-1.so*", "_internal/libsystemd.so*", "_internal/libgcrypt.so*",
    "_internal/libX11.so*", "_internal/libX11-xcb.so*", "_internal/libfontconfig.so*", "_internal/libfreetype.so*",
    "_internal/libXau.so*", "_internal/libXdmcp.so*", "_internal/libbsd.so*", "_internal/libmd.so*",
]
# ... unless the build was asked to keep numpy's OpenBLAS (--with-openblas).
MUST_NOT_CONTAIN_WITHOUT_BLAS = ["_internal/numpy.libs/*", "_internal/libscipy_openblas*", "_internal/libgfortran*"]
# ... and what it must contain for the window to open and the icon to load.
MUST_CONTAIN = [
    "_internal/resources/faultwatch.svg", "_internal/resources/scenarios/demo.toml",
    "_internal/PySide6/Qt/plugins/platforms/libqxcb.so", "_internal/PySide6/Qt/plugins/platforms/libqoffscreen.so",
    "_internal/PySide6/Qt/plugins/imageformats/libqsvg.so", "_internal/PySide6/Qt/plugins/iconengines/libqsvgicon.so",
] if sys.platform.startswith("linux") else []


class SmokeTestError(Exception):
    """A check of the frozen executable failed; the message says which and shows its output."""


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MB"


def tree_size(path: Path) -> int:
    """Bytes on disk under `path` (symlinks counted as links, as `du` does)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def pyinstaller(*, workpath: Path, distpath: Path, spec_args: Sequence[str] = ()) -> float:
    """Run PyInstaller on the spec; returns the wall time in seconds."""
    if importlib.util.find_spec("PyInstaller") is None:
        raise SmokeTestError(f"PyInstaller is not installed in {sys.prefix}: "
                             f"{sys.executable} -m pip install -e '.[package]' (or: make package)")
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
           "--workpath", str(workpath), "--distpath", str(distpath), str(SPEC)]
    if spec_args:
        cmd += ["--", *spec_args]
    _say(" ".join(cmd))
    start = time.perf_counter()
    # The archive of Python modules (PYZ) is compressed at zlib level 6 by default; 9 makes it about
    # 2 % smaller and costs nothing at start (inflating is as fast).
    env = dict(os.environ, PYINSTALLER_ZLIB_COMPRESSION_LEVEL="9")
    subprocess.run(cmd, cwd=ROOT, check=True, env=env)
    return time.perf_counter() - start


# How the bundle's numpy is built: no BLAS/LAPACK (numpy's own loops and lapack_lite) and no CPU
# dispatch (one copy of each loop, for numpy's x86-64 baseline, instead of extra copies for AVX2 and
# AVX-512 picked at run time; SVML is AVX-512 only). The charts handle arrays of a few thousand points.
NUMPY_SETUP_ARGS = ["-Dallow-noblas=true", "-Dblas=none", "-Dlapack=none", "-Dcpu-dispatch=none",
                    "-Ddisable-svml=true"]
# Outside build/ so that `make clean` does not cost another compile; named by the settings above.
NUMPY_WHEELS = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "faultwatch-build"
                / ("numpy-" + "-".join(a.removeprefix("-D") for a in NUMPY_SETUP_ARGS)))


def numpy_wheel_without_blas() -> Path:
    """numpy-<installed version>-*.whl built with NUMPY_SETUP_ARGS (compiled once, then cached)."""
    import numpy

    found = sorted(NUMPY_WHEELS.glob(f"numpy-{numpy.__version__}-*.whl"))
    if found:
        return found[-1]
    # --no-cache-dir: pip's own wheel cache might hand back a numpy built with other settings.
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "--no-binary", "numpy",
           f"numpy=={numpy.__version__}", "-w", str(NUMPY_WHEELS), *(f"-Csetup-args={a}" for a in NUMPY_SETUP_ARGS)]
    _say("building numpy without BLAS (once; about 5 min of CPU): " + " ".join(cmd))
    if subprocess.run(cmd, cwd=ROOT).returncode != 0:
        raise SmokeTestError("numpy without BLAS did not build (needs gcc and g++); "
                             "`packaging/build.py --with-openblas` builds with numpy's OpenBLAS (+27 MB)")
    found = sorted(NUMPY_WHEELS.glob(f"numpy-{numpy.__version__}-*.whl"))
    if not found:
        raise SmokeTestError(f"pip wheel left no numpy-{numpy.__version__} wheel in {NUMPY_WHEELS}")
    return found[-1]


def build_onedir(spec_args: Sequence[str] = ()) -> None:
    shutil.rmtree(BUNDLE, ignore_errors=True)
    seconds = pyinstaller(workpath=BUILD / "pyinstaller", distpath=DIST, spec_args=spec_args)
    if not EXECUTABLE.is_file():
        raise SmokeTestError(f"PyInstaller did not produce {EXECUTABLE}")
    _say(f"built {BUNDLE.relative_to(ROOT)} in {seconds:.1f} s; bundle size {_mb(tree_size(BUNDLE))}")


def build_onefile(spec_args: Sequence[str] = ()) -> None:
    if ONEFILE.exists():
        ONEFILE.unlink()
    seconds = pyinstaller(workpath=BUILD / "pyinstaller-onefile", distpath=DIST, spec_args=["--onefile", *spec_args])
    _say(f"built {ONEFILE.relative_to(ROOT)} in {seconds:.1f} s; file size {_mb(tree_size(ONEFILE))}")


def build_untrimmed() -> None:
    """PyInstaller's defaults (no exclusions), outside dist/, to report what the trimming saves."""
    dist = BUILD / "untrimmed-dist"
    shutil.rmtree(dist, ignore_errors=True)
    seconds = pyinstaller(workpath=BUILD / "untrimmed-work", distpath=dist, spec_args=["--no-trim"])
    untrimmed = tree_size(dist / "faultwatch")
    line = f"untrimmed bundle (PyInstaller defaults) {_mb(untrimmed)}, built in {seconds:.1f} s"
    if BUNDLE.is_dir():
        trimmed = tree_size(BUNDLE)
        line += f"; trimmed {_mb(trimmed)} (saves {_mb(untrimmed - trimmed)}, {1 - trimmed / untrimmed:.0%})"
    _say(line)


@contextmanager
def isolated_env() -> Iterator[dict[str, str]]:
    """Environment for a run of the app: offscreen Qt, and throwaway state/config/QSettings dirs."""
    with tempfile.TemporaryDirectory(prefix="faultwatch-smoke-") as tmp:
        env = dict(os.environ)
        env.update({
            "QT_QPA_PLATFORM": "offscreen",
            "FAULTWATCH_STATE_DIR": str(Path(tmp) / "state"),
            "FAULTWATCH_CONFIG_DIR": str(Path(tmp) / "config"),
            "XDG_CONFIG_HOME": str(Path(tmp) / "xdg-config"),  # QSettings (window geometry)
            "XDG_RUNTIME_DIR": str(Path(tmp) / "xdg-runtime"),  # keeps Qt from warning when unset
        })
        env.pop("FAULTWATCH_CONFIG", None)
        Path(env["XDG_RUNTIME_DIR"]).mkdir(mode=0o700)
        yield env


def run(cmd: Sequence[str | Path], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        # TimeoutExpired carries bytes even when text=True was asked for.
        output = b"".join(x if isinstance(x, bytes) else (x or "").encode() for x in (exc.stdout, exc.stderr))
        raise SmokeTestError(f"{' '.join(map(str, cmd))}: no exit within {timeout:.0f} s\n"
                             f"{output.decode(errors='replace')}") from None


def _fail(what: str, proc: subprocess.CompletedProcess[str]) -> SmokeTestError:
    return SmokeTestError(f"{what}\n$ {' '.join(proc.args)}\nexit code {proc.returncode}\n"
                          f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}")


def _no_traceback(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if "Traceback (most recent call last)" in proc.stderr or "[PYI-" in proc.stderr:
        raise _fail(f"{what}: a traceback or a PyInstaller bootloader error on stderr", proc)


def check_version(exe: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from core import __version__

    with isolated_env() as env:
        proc = run([exe, "--version"], env)
    if proc.returncode != 0 or proc.stdout.strip() != f"faultwatch {__version__}":
        raise _fail(f"--version: expected 'faultwatch {__version__}' and exit code 0", proc)
    _say(f"--version: {proc.stdout.strip()}")


def check_self_test(exe: Path) -> None:
    with isolated_env() as env:
        start = time.perf_counter()
        proc = run([exe, "--self-test"], env, timeout=90)
        seconds = time.perf_counter() - start
    if proc.returncode != 0 or "PASSED" not in proc.stdout:
        raise _fail("--self-test did not pass", proc)
    _no_traceback(proc, "--self-test")
    _say(f"--self-test: passed in {seconds:.1f} s wall")


def check_configs(exe: Path) -> None:
    examples = sorted((ROOT / "resources" / "examples").glob("*.toml"))
    with isolated_env() as env:
        for path in examples:
            proc = run([exe, "--check-config", path], env)
            if proc.returncode != 0:
                raise _fail(f"--check-config {path.relative_to(ROOT)} refused a shipped example", proc)
        bad = Path(env["FAULTWATCH_STATE_DIR"]).parent / "bad.toml"
        bad.write_text("[fault_detection]\ncheck_interval_seconds = \"often\"\n", encoding="utf-8")
        proc = run([exe, "--check-config", bad], env)
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 2 or len(lines) != 1:
        raise _fail("--check-config on a broken file: expected exit code 2 and one line on stderr", proc)
    _say(f"--check-config: {len(examples)} example(s) accepted; a broken file refused: {lines[0]}")


def check_headless(exe: Path) -> None:
    """`--headless --demo` for a moment: the no-window path streams JSON events and stops cleanly."""
    with isolated_env() as env:
        env.pop("QT_QPA_PLATFORM")
        proc = run([exe, "--headless", "--demo", "--duration", "1.5", "--events", "-"], env)
    events = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not events:
        raise _fail("--headless --demo: expected exit code 0 and JSON events on stdout", proc)
    _no_traceback(proc, "--headless")
    _say(f"--headless --demo: {len(events)} events in 1.5 s, clean exit")


def probe_startup(cmd: Sequence[str | Path], *, xvfb: bool = False) -> tuple[float, float, float]:
    """One GUI start on the demo rack, offscreen.

    Returns (first paint as the app reports it, first paint seen from outside, start-paint-quit wall
    time). The app's own figure counts from its process's creation, which for a one-file build is
    the child that starts *after* the bootloader has unpacked everything; seen from outside (spawn
    until the probe line arrives on stdout) is the number a user feels, so both are reported.
    """
    with isolated_env() as env, tempfile.TemporaryFile("w+") as err:
        argv = [str(c) for c in (*cmd, "--demo", "--startup-probe")]
        if xvfb:  # the real xcb platform plugin on a virtual X server, instead of offscreen
            env.pop("QT_QPA_PLATFORM")
            argv = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        seen_at = None
        out = []
        for line in proc.stdout:
            out.append(line)
            if seen_at is None and PROBE_RE.match(line):
                seen_at = time.perf_counter() - start
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        wall = time.perf_counter() - start
        err.seek(0)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(out), err.read())
    match = PROBE_RE.search(result.stdout)
    if result.returncode != 0 or match is None or seen_at is None:
        raise _fail("--demo --startup-probe: expected exit code 0 and a startup_to_first_paint_s= line", result)
    _no_traceback(result, "--startup-probe")
    unexpected = [line for line in result.stderr.splitlines()
                  if line.strip() and not any(p.fullmatch(line) for p in GUI_STDERR_ALLOWED)]
    if unexpected:
        raise _fail("--demo --startup-probe: unexpected output on stderr:\n  " + "\n  ".join(unexpected[:20]),
                    result)
    return float(match.group(1)), seen_at, wall


def check_gui(exe: Path) -> None:
    paint, seen, wall = probe_startup([exe])
    _say(f"GUI (--demo --startup-probe): first paint {paint:.2f} s (in-app), {seen:.2f} s (from spawn); "
         f"start-paint-quit {wall:.2f} s")


def check_gui_xcb(exe: Path) -> None:
    """The same start on the xcb platform under Xvfb, when xvfb-run exists: the bundle's xcb plugin
    and the host's libxcb-* libraries (which a user must install, docs/packaging.md) load together."""
    if not sys.platform.startswith("linux") or shutil.which("xvfb-run") is None:
        _say("GUI on xcb: skipped (no xvfb-run; Debian: apt-get install xvfb)")
        return
    try:
        paint, seen, wall = probe_startup([exe], xvfb=True)
    except SmokeTestError as exc:
        if "xcb-cursor0" in str(exc) or "Could not load the Qt platform plugin" in str(exc):
            # The host lacks the xcb libraries: an environment gap, not a defect of the bundle.
            _say("GUI on xcb: SKIPPED, this host lacks Qt's xcb dependencies: apt-get install "
                 "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 "
                 "libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-xkb1 libxkbcommon-x11-0")
            return
        raise
    _say(f"GUI on xcb under Xvfb: first paint {seen:.2f} s from spawn; start-paint-quit {wall:.2f} s")


def check_contents(bundle: Path, *, blas: bool = False) -> None:
    files = [p.relative_to(bundle).as_posix() for p in bundle.rglob("*")]
    excluded = MUST_NOT_CONTAIN + ([] if blas else MUST_NOT_CONTAIN_WITHOUT_BLAS)
    unwanted = sorted({f for f in files for pat in excluded if fnmatch.fnmatch(f, pat)})
    missing = [pat for pat in MUST_CONTAIN if not any(fnmatch.fnmatch(f, pat) for f in files)]
    if unwanted or missing:
        raise SmokeTestError("bundle contents: " + "; ".join(
            ([f"excluded but present: {', '.join(unwanted[:10])}"] if unwanted else [])
            + ([f"missing: {', '.join(missing)}"] if missing else [])))
    _say(f"contents: {len(excluded)} exclusions hold, {len(MUST_CONTAIN)} required files present")


def smoke_test(*, blas: bool = False) -> None:
    if not EXECUTABLE.is_file():
        raise SmokeTestError(f"{EXECUTABLE} does not exist: build it first (make package)")
    _say(f"testing {EXECUTABLE.relative_to(ROOT)} ({_mb(tree_size(BUNDLE))})")
    check_contents(BUNDLE, blas=blas)
    check_version(EXECUTABLE)
    check_self_test(EXECUTABLE)
    check_configs(EXECUTABLE)
    check_headless(EXECUTABLE)
    check_gui(EXECUTABLE)
    check_gui_xcb(EXECUTABLE)
    _say("smoke test passed")


def _median_startup(label: str, cmd: Sequence[str | Path], runs: int) -> float:
    results = [probe_startup(cmd) for _ in range(runs)]
    paint, seen, wall = (statistics.median(r[i] for r in results) for i in range(3))
    _say(f"startup {label:<9} first paint {paint:.2f} s in-app, {seen:.2f} s from spawn; "
         f"start-paint-quit {wall:.2f} s (median of {runs}; from spawn: "
         f"{', '.join(f'{r[1]:.2f}' for r in results)})")
    return seen


def measure_startup(runs: int = 3) -> None:
    """Median start-to-first-paint and wall time, packaged vs. `python -m core.cli` (and one-file)."""
    if not EXECUTABLE.is_file():
        raise SmokeTestError(f"{EXECUTABLE} does not exist: build it first (make package)")
    probe_startup([EXECUTABLE])  # warm the page cache so the first packaged run is not penalised
    packaged = _median_startup("packaged", [EXECUTABLE], runs)
    if ONEFILE.is_file():
        _median_startup("one-file", [ONEFILE], runs)
    _median_startup("source", [sys.executable, "-m", "gui.launcher"], runs)
    verdict = "met" if packaged < STARTUP_TARGET_S else "MISSED"
    _say(f"target: packaged first paint from spawn < {STARTUP_TARGET_S:.1f} s: {verdict} ({packaged:.2f} s)")


def render_icon(size: int = 256) -> None:
    """resources/faultwatch.png from the SVG, offscreen, with QtSvg (part of PySide6-Essentials)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 (must exist)
    renderer = QSvgRenderer(str(ROOT / "resources" / "faultwatch.svg"))
    if not renderer.isValid():
        raise SmokeTestError("resources/faultwatch.svg is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    out = ROOT / "resources" / "faultwatch.png"
    if not image.save(str(out)):
        raise SmokeTestError(f"could not write {out}")
    _say(f"rendered {out.relative_to(ROOT)} ({size} px)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-only", action="store_true", help="smoke-test dist/faultwatch without building")
    parser.add_argument("--startup", action="store_true", help="measure startup, packaged vs. source")
    parser.add_argument("--onefile", action="store_true", help="also build and time the one-file variant")
    parser.add_argument("--compare", action="store_true", help="also build untrimmed, to report the size saved")
    parser.add_argument("--icon", action="store_true", help="re-render resources/faultwatch.png and exit")
    parser.add_argument("--runs", type=int, default=3, help="startup runs per variant (default 3)")
    parser.add_argument("--with-openblas", action="store_true",
                        help="bundle numpy as installed, OpenBLAS included (+27 MB), instead of building it without")
    args = parser.parse_args(argv)
    try:
        if args.icon:
            render_icon()
            return 0
        # --startup alone measures what is already built; --onefile/--compare imply a build.
        measure_only = args.startup and not (args.onefile or args.compare)
        if not args.test_only and not measure_only:
            start = time.perf_counter()
            spec_args = [] if args.with_openblas else [f"--numpy-wheel={numpy_wheel_without_blas()}"]
            build_onedir(spec_args)
            if args.onefile:
                build_onefile(spec_args)
            if args.compare:
                build_untrimmed()
            _say(f"build time {time.perf_counter() - start:.1f} s")
        if not measure_only:
            smoke_test(blas=args.with_openblas)
        if args.startup:
            measure_startup(args.runs)
    except SmokeTestError as exc:
        print(f"\nPACKAGING FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"\nPACKAGING FAILED: {' '.join(map(str, exc.cmd))} exited with {exc.returncode}",
              file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
