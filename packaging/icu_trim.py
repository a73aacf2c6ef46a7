"""A smaller ICU data library for the bundle: the same libicudata, with only the data an English Qt app reads.

PySide6's libicudata.so.NN is 32 MB: ICU's data for every locale, collation, transliteration, break
dictionaries and character-set converters. libQt6Core links ICU, so the library must exist, but what Qt
asks ICU for in this app (case mapping and number/locale data for the C/English locale, normalisation;
Qt draws, breaks lines and converts UTF-8/Latin-1 with its own code) is a few MB of it. When ICU does not
find an item it returns an error code and Qt falls back to its own implementation; it never crashes.

Steps, with Debian's `icu-devtools` (icupkg, genccode) and a C compiler: extract the data blob from the
library's `icudtNN_dat` symbol, drop items with `icupkg -r`, turn the result back into a shared library
with the same soname and symbol. Without the tools the bundle keeps the full library (a warning says so).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# Locale-keyed trees: only the root and English locales stay.
_LOCALE_TREES = ("curr", "lang", "region", "unit", "zone", "rbnf")
_KEEP_LOCALES = ("root", "en", "en_US", "en_001", "en_150", "en_GB", "en_US_POSIX", "pool", "res_index")
# Whole trees and items nothing in the app can reach: transliterators, break-iterator rules and their
# dictionaries (Qt finds text boundaries itself), character names, spoof checks, and every codepage
# converter (Qt converts UTF-8/16/32 and Latin-1 itself; nothing here asks for another charset).
_DROP_TREES = ("translit", "brkitr")
_DROP_ITEMS = ("unames.icu", "confusables.cfu", "confusablesWholeScript.cfu")
_DROP_SUFFIXES = (".cnv",)
_LOCALE_RE = re.compile(r"[a-z]{2,3}(_[A-Za-z0-9]+)*")


def keep_item(item: str) -> bool:
    """Whether an ICU data item (e.g. "curr/en.res", "fr.res", "uprops.icu") stays in the trimmed data."""
    parts = item.split("/")
    name = parts[-1]
    base = name.rsplit(".", 1)[0]
    if parts[0] in _DROP_TREES or name in _DROP_ITEMS or name.endswith(_DROP_SUFFIXES):
        return False
    if parts[0] == "coll":
        return base == "root" or name == "ucadata.icu"
    if (parts[0] in _LOCALE_TREES or len(parts) == 1) and name.endswith(".res") and _LOCALE_RE.fullmatch(base):
        return base in _KEEP_LOCALES
    return True


def _run(*cmd: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[:500]}")
    return proc.stdout


def _symbol_bytes(library: Path, symbol: str) -> bytes:
    """The bytes of a data symbol, located through the section that holds it."""
    value = size = None
    for line in _run("nm", "-D", "-S", str(library)).splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3] == symbol:
            value, size = int(fields[0], 16), int(fields[1], 16)
    if value is None or size is None:
        raise RuntimeError(f"{library.name}: no symbol {symbol}")
    for line in _run("readelf", "-SW", str(library)).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            addr, offset, length = (int(m.group(i), 16) for i in (2, 3, 4))
            if addr <= value < addr + length:
                with library.open("rb") as f:
                    f.seek(offset + value - addr)
                    return f.read(size)
    raise RuntimeError(f"{library.name}: {symbol} is in no section")


def missing_tools() -> list[str]:
    return [t for t in ("icupkg", "genccode", "nm", "readelf", "cc") if shutil.which(t) is None]


def trim_icudata(library: Path, workdir: Path) -> tuple[Path, int, int]:
    """Build the trimmed library in `workdir`; returns (path, items kept, items dropped)."""
    m = re.fullmatch(r"libicudata\.so\.(\d+)", library.name)
    if not m:
        raise RuntimeError(f"not an ICU data library: {library.name}")
    version = m.group(1)
    package = f"icudt{version}l"  # "l": little-endian, what every platform PySide6 ships for uses
    workdir.mkdir(parents=True, exist_ok=True)
    full = workdir / "full" / f"{package}.dat"
    full.parent.mkdir(exist_ok=True)
    full.write_bytes(_symbol_bytes(library, f"icudt{version}_dat"))
    items = _run("icupkg", "-l", str(full)).split()
    drop = [i for i in items if not keep_item(i)]
    (workdir / "drop.txt").write_text("\n".join(drop) + "\n", encoding="utf-8")
    out = workdir / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    _run("icupkg", "-r", str(workdir / "drop.txt"), str(full), str(out / f"{package}.dat"))
    _run("genccode", "-a", "gcc", "-e", f"icudt{version}", "-d", str(out), str(out / f"{package}.dat"))
    result = out / library.name
    _run("cc", "-shared", "-nostdlib", f"-Wl,-soname,{library.name}", "-o", str(result),
         str(out / f"{package}_dat.S"))
    return result, len(items) - len(drop), len(drop)
