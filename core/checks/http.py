"""HTTP check: `GET {endpoint}{health_path}`, today's check, with optional expectations.

Without a `check` table a service gets this type with its defaults, so every config written before
check types existed means what it meant. The request goes through core/probe.py's Prober over the
engine's one aiohttp session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from core.checks.base import CheckContext, CheckResult, CheckType
from core.events import FailureType
from core.options import opt


@dataclass(frozen=True, slots=True)
class JsonExpectation:
    path: str = opt("", "Dotted path into the JSON body (`status.state`, `items.0.ok`).", required=True)
    equals: float | str | bool | None = opt(None, "The value found there must equal this.")


@dataclass(frozen=True, slots=True)
class HttpCheck:
    TYPE: ClassVar[str] = "http"
    method: Literal["GET", "HEAD", "POST"] = opt("GET", "HTTP method of the check.")
    expect_status: tuple[int, ...] = opt((), "Accepted status codes (empty: any 2xx).", factory=tuple)
    body_contains: str = opt("", "The body must contain this text.")
    json: JsonExpectation | None = opt(None, "A value the JSON body must hold: { path = \"...\", equals = ... }.")

    def target(self, endpoint: str, health_path: str) -> str:
        return f"{self.method} {endpoint}{health_path}"


class _Http:
    def __init__(self, settings: HttpCheck, ctx: CheckContext, health_path: str, max_body_bytes: int,
                 tls_verify: bool, ca_bundle: str) -> None:
        from core.probe import Prober

        self._s = settings
        self._prober = Prober(ctx.session)
        self._path = health_path
        self._max_body = max_body_bytes
        self._tls_verify = tls_verify
        self._ca_bundle = ca_bundle

    async def run(self, endpoint: str) -> CheckResult:
        s = self._s
        # The timeout is execute()'s; slow → degraded is judged there too, once for every type.
        return await self._prober.check(
            endpoint + self._path, timeout_s=None, slow_ms=float("inf"), max_body_bytes=self._max_body,
            tls_verify=self._tls_verify, ca_bundle=self._ca_bundle, method=s.method,
            expect_status=s.expect_status, body_contains=s.body_contains,
            json_path=s.json.path if s.json else "", json_equals=s.json.equals if s.json else None)

    def describe_error(self, exc: BaseException) -> tuple[str, FailureType]:
        return f"{type(exc).__name__}: {exc}", FailureType.SERVICE_UNAVAILABLE

    async def close(self) -> None:
        return None


def _make(settings: HttpCheck, ctx: CheckContext, service: Any) -> _Http:
    fd = service.fault_detection
    return _Http(settings, ctx, service.health_path, fd.max_body_bytes, service.tls_verify, service.ca_bundle)


CHECK = CheckType("http", HttpCheck, _make, "An HTTP(S) request to the service's endpoint + health_path.")
