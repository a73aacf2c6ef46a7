#!/usr/bin/env python3
"""Build the headless engine's container image with podman, offline from Debian's packages and a wheelhouse.

    packaging/container/build.py            build faultwatch:<version> and faultwatch:latest
    packaging/container/build.py --rebase   also remake the debian:bookworm-slim base (fresh packages)

Steps, each timed:
1. The base: `debian:bookworm-slim` made locally from Debian's packages with mmdebstrap (minbase,
   merged /usr, no docs, man pages or locales, like Docker Hub's slim image) and `podman import`ed
   under that name. No image registry is needed; the rootfs tar is cached in
   $FAULTWATCH_IMAGE_CACHE (default ~/.cache/faultwatch) and the imported image is kept.
2. The wheelhouse: `pip wheel` of this project (headless: no `gui` extra) on the host, which reaches
   PyPI through its own configuration; the build itself never reaches PyPI.
3. `podman build --pull=never` of the Containerfile, with build/image-context/ as the context.

podman is pointed at packaging/container/containers.conf (runc, cgroupfs, no default ulimits) unless
CONTAINERS_CONF is already set. Prints the image size; exits non-zero with the failing command's
output if any step fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "packaging" / "container"
CONTEXT = ROOT / "build" / "image-context"
BASE = "debian:bookworm-slim"
IMAGE = "faultwatch"
SIZE_LIMIT_MB = 250
SUITES = ("deb http://deb.debian.org/debian bookworm main",
          "deb http://deb.debian.org/debian bookworm-updates main",
          "deb http://deb.debian.org/debian-security bookworm-security main")
# What Docker Hub's slim images leave out; kept in the base's dpkg config, so packages installed
# later in the Containerfile leave them out too.
SLIM_DPKG = ("path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
             "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/locale/*",
             "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/lintian/*")


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(HERE / "containers.conf"))
    return env


def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=podman_env(), **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        sys.exit(f"image: {' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc  # type: ignore[no-any-return]


def version() -> str:
    text = (ROOT / "core" / "__init__.py").read_text(encoding="utf-8")
    return text.split('__version__ = "', 1)[1].split('"', 1)[0]


def cache_dir() -> Path:
    path = Path(os.environ.get("FAULTWATCH_IMAGE_CACHE", Path.home() / ".cache" / "faultwatch"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name], env=podman_env()).returncode == 0


def make_base(rebase: bool) -> str:
    if image_exists(BASE) and not rebase:
        return "kept"
    tar = cache_dir() / "bookworm-minbase.tar"
    if rebase or not tar.exists():
        if shutil.which("mmdebstrap") is None:
            sys.exit("image: mmdebstrap is not installed (Debian package mmdebstrap)")
        partial = tar.with_suffix(".partial.tar")
        run(["mmdebstrap", "--quiet", "--variant=minbase", "--format=tar", "--include=ca-certificates",
             # merged /usr by a hook, not the usrmerge package (which pulls in all of perl: +50 MB)
             "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
             *(f"--dpkgopt={o}" for o in SLIM_DPKG), "bookworm", str(partial), *SUITES])
        partial.replace(tar)
    run(["podman", "import", "--quiet", str(tar), BASE])
    return "imported"


def wheelhouse_digest() -> str:
    digest = hashlib.sha256()
    for wheel in sorted((CONTEXT / "wheels").iterdir()):
        digest.update(wheel.name.encode())
        digest.update(hashlib.sha256(wheel.read_bytes()).digest())
    return digest.hexdigest()[:16]


def make_wheelhouse() -> int:
    wheels = CONTEXT / "wheels"
    if CONTEXT.exists():
        shutil.rmtree(CONTEXT)
    wheels.mkdir(parents=True)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(ROOT)])
    for name in ("faultwatch.toml", "healthz.py"):
        shutil.copy2(HERE / name, CONTEXT / name)
    return sum(p.stat().st_size for p in wheels.iterdir())


def build_image(tag: str) -> None:
    # --format docker: the OCI image format has no HEALTHCHECK. --network host: apt inside the build
    # reaches Debian's mirror the way the host does.
    run(["podman", "build", "--quiet", "--pull=never", "--format", "docker", "--network", "host",
         "--build-arg", f"WHEELHOUSE={wheelhouse_digest()}",
         "-f", str(ROOT / "Containerfile"), "-t", tag, "-t", f"{IMAGE}:latest", str(CONTEXT)])


def image_size_mb(tag: str) -> float:
    out = run(["podman", "image", "inspect", "--format", "{{.Size}}", tag]).stdout.strip()
    return int(out) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebase", action="store_true", help="remake the base image from fresh packages")
    args = parser.parse_args(argv)
    if shutil.which("podman") is None:
        sys.exit("image: podman is not installed (Debian packages podman and runc)")
    tag = f"{IMAGE}:{version()}"
    t0 = time.perf_counter()
    base = make_base(args.rebase)
    t1 = time.perf_counter()
    wheel_bytes = make_wheelhouse()
    t2 = time.perf_counter()
    build_image(tag)
    t3 = time.perf_counter()
    size = image_size_mb(tag)
    print(f"image: {tag} {size:.0f} MB (limit {SIZE_LIMIT_MB} MB); base {base} {t1 - t0:.1f} s, "
          f"wheelhouse {wheel_bytes / 1e6:.1f} MB {t2 - t1:.1f} s, build {t3 - t2:.1f} s, total {t3 - t0:.1f} s")
    if size > SIZE_LIMIT_MB:
        print(f"image: {tag} is larger than {SIZE_LIMIT_MB} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
