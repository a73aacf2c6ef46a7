"""Who may use the API: loopback or TLS, two token roles, and refusing repeated bad tokens.

On loopback (the default) reads are open, as they always were, and commands need the operator token.
Once the listener leaves loopback, every endpoint needs a token: a viewer token reads (services,
metrics, history, the stream), the operator token also commands. Device heartbeats stay token-free
unless `[api] heartbeat_auth` is set: a beat can only mark an already configured service alive, the
active checks keep running, and most devices cannot be given a secret (docs/api.md says so).

Tokens are compared in constant time and never logged. An address that sends more than
`auth_failures_per_minute` bad tokens (or viewer commands) in a minute gets 429 without its tokens
even being compared, so guessing cannot go on at full speed; refusals are journaled, at most twice a
minute per address (the first, and the switch to 429), so a flood cannot fill the journal.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import ssl
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from core.clock import Clock
from core.config import ApiConfig, ConfigError

log = logging.getLogger("core.api")

AUTH_ERROR = "missing or wrong bearer token"
FORBIDDEN = "this token may only read (viewer); commands need the operator token"
RATE_LIMITED = "too many bad tokens from this address; try again later"
_WINDOW_S = 60.0
ROLE = web.RequestKey("faultwatch_role", str)  # the request's role, for handlers that report it


class Role(str, Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"; wildcards (0.0.0.0, ::) are not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def exposure_problem(api: ApiConfig, host: str, listen: str) -> str | None:
    """Why the API must not start on `host` with this config (one line), or None."""
    if is_loopback(host) or api.allow_insecure:
        return None
    if not (api.tls_cert and api.tls_key):
        return (f"[api] listen {listen} is not loopback: set [api] tls_cert and tls_key "
                "(or allow_insecure = true to send tokens in clear text)")
    return None


def make_ssl_context(api: ApiConfig) -> ssl.SSLContext | None:
    """The server's TLS context from `[api] tls_cert`/`tls_key`; ConfigError (one line) if unusable."""
    if not api.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(api.tls_cert, api.tls_key)
    except FileNotFoundError as exc:
        raise ConfigError(f"[api] tls_cert/tls_key: {exc.filename}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"[api] tls_cert/tls_key: cannot load the certificate and key ({exc.strerror or exc})"
                          ) from None
    return context


@dataclass(frozen=True, slots=True)
class ApiSecurity:
    """What the gate enforces (tokens as bytes; never logged, never in repr).

    Attributes:
        reads_need_token: GETs and the stream need a viewer or operator token (non-loopback listen).
        heartbeats_need_token: POST /heartbeat/... needs a token too.
    """

    operator_token: bytes
    viewer_token: bytes
    reads_need_token: bool
    heartbeats_need_token: bool
    failures_per_minute: int

    def __repr__(self) -> str:
        return (f"ApiSecurity(reads_need_token={self.reads_need_token}, "
                f"heartbeats_need_token={self.heartbeats_need_token}, viewer={bool(self.viewer_token)})")

    @classmethod
    def from_config(cls, api: ApiConfig, host: str, operator_token: str, viewer_token: str) -> ApiSecurity:
        exposed = not is_loopback(host)
        return cls(operator_token.encode("utf-8"), viewer_token.encode("utf-8"),
                   reads_need_token=exposed or api.reads_need_token,
                   heartbeats_need_token=exposed and api.heartbeat_auth,
                   failures_per_minute=api.auth_failures_per_minute)


Refusal = Callable[[str, str], None]  # (what happened, detail) → journal it


class Gate:
    """Decides each request's role, answers 401/403/429, and remembers bad tokens per address."""

    def __init__(self, security: ApiSecurity, clock: Clock, on_refusal: Refusal | None = None) -> None:
        self.security = security
        self._clock = clock
        self._on_refusal = on_refusal
        self._failures: dict[str, deque[float]] = {}

    def role_of(self, authorization: str) -> Role | None:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        # Bytes, because compare_digest refuses non-ASCII str and a header can hold anything; both
        # comparisons always run, so the timing says nothing about which token came close.
        given = credential.strip().encode("utf-8", "surrogateescape")
        is_operator = hmac.compare_digest(given, self.security.operator_token)
        viewer = self.security.viewer_token
        is_viewer = bool(viewer) and hmac.compare_digest(given, viewer)
        if is_operator:
            return Role.OPERATOR
        return Role.VIEWER if is_viewer else None

    def limited(self, remote: str) -> bool:
        times = self._recent(remote)
        return len(times) >= self.security.failures_per_minute

    def _recent(self, remote: str) -> deque[float]:
        times = self._failures.get(remote)
        if times is None:
            return deque()
        cutoff = self._clock.monotonic() - _WINDOW_S
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[remote]
        return times

    def note_failure(self, remote: str, what: str, detail: str) -> None:
        times = self._recent(remote)
        self._failures[remote] = times
        times.append(self._clock.monotonic())
        count = len(times)
        if self._on_refusal is None:
            return
        if count == 1:
            self._on_refusal(what, detail)
        elif count == self.security.failures_per_minute:
            self._on_refusal("api_rate_limited",
                             f"{count} refused requests from {remote} within a minute: answering 429")

    @staticmethod
    def kind_of(request: web.BaseRequest) -> str:
        if request.path.startswith("/heartbeat/"):
            return "heartbeat"
        if request.path == "/healthz":
            return "liveness"  # container and load-balancer probes carry no credentials
        if request.path.startswith("/api/") and (request.method not in ("GET", "HEAD", "OPTIONS")
                                                  or request.path.startswith("/api/config/")):
            return "command"  # config reads too: the file names restart commands and hosts
        return "read"

    def needs(self, kind: str) -> Role | None:
        if kind == "command":
            return Role.OPERATOR
        if kind == "liveness":
            return None
        if kind == "heartbeat":
            return Role.VIEWER if self.security.heartbeats_need_token else None
        return Role.VIEWER if self.security.reads_need_token else None

    def middleware(self) -> Middleware:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            kind = self.kind_of(request)
            need = self.needs(kind)
            header = request.headers.get("Authorization", "")
            remote = request.remote or "?"
            if need is None and not header:
                return await handler(request)
            if self.limited(remote):
                return _error(429, RATE_LIMITED, {"Retry-After": str(int(_WINDOW_S))})
            role = self.role_of(header) if header else None
            if role is None:
                if need is None:
                    # A wrong token on an open route: answer as if none was sent, but count it.
                    self.note_failure(remote, "api_auth_refused", f"bad token from {remote}: "
                                      f"{request.method} {request.path}")
                    return await handler(request)
                self.note_failure(remote, "api_auth_refused",
                                  f"{'bad' if header else 'no'} token from {remote}: {request.method} {request.path}")
                log.info("API refused %s %s from %s: %s", request.method, request.path, remote, AUTH_ERROR)
                return _error(401, AUTH_ERROR, {"WWW-Authenticate": "Bearer"})
            if need is Role.OPERATOR and role is not Role.OPERATOR:
                self.note_failure(remote, "api_forbidden",
                                  f"viewer token from {remote} tried {request.method} {request.path}")
                log.info("API refused %s %s from %s: viewer token", request.method, request.path, remote)
                return _error(403, FORBIDDEN)
            request[ROLE] = role.value
            return await handler(request)
        return gate


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
