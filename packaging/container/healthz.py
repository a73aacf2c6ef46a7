#!/usr/bin/python3
"""The container's HEALTHCHECK: exit 0 if GET $FAULTWATCH_HEALTHZ_URL answers 200, else 1 with one line.

Debian's python3 and the standard library only, so it works whatever is installed in the venv.
"""

import json
import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("FAULTWATCH_HEALTHZ_URL", "http://127.0.0.1:8765/healthz")

try:
    with urllib.request.urlopen(URL, timeout=4) as response:  # noqa: S310 - a fixed local URL
        sys.exit(0)
except urllib.error.HTTPError as exc:
    try:
        checks = json.load(exc).get("checks", {})
    except ValueError:
        checks = {}
    print(f"unhealthy ({exc.code}): {checks}")
except (OSError, ValueError) as exc:
    print(f"no answer from {URL}: {exc}")
sys.exit(1)
