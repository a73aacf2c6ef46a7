"""Notifications through apprise, against real receivers on loopback: an SMTP server (aiosmtpd) and
an HTTP server taking apprise's json:// posts. Escalation, retries and rate limits run on a FakeClock."""

from __future__ import annotations

import asyncio
import email
import json
import logging
import socket
from email import policy
from typing import Any, Awaitable, Callable

import pytest
from aiohttp import web

from core.clock import FakeClock, SystemClock
from core.config import NotifyConfig, parse_config
from core.events import AlertEvent, NotifyEvent
from core.notify import AlertContext, Notifier, ServiceInfo, channel_name

WALL0 = 1_796_107_200.0  # 2026-12-01 06:40 UTC

SERVICES = {
    "plc-7": ServiceInfo(name="PLC 7 (press line)", group="line-1", tags=("plc",)),
    "cam-2": ServiceInfo(name="Camera 2", group="line-2", tags=("vision",)),
}


def alert(state: str, service: str = "plc-7", severity: str = "critical", rule: str = "unhealthy",
          message: str = "unhealthy for 30 s", wall: float = WALL0) -> AlertEvent:
    group = SERVICES[service].group if service in SERVICES else ""
    return AlertEvent(service=service, mono=0.0, wall=wall, alert_id=f"{rule}:{service}", severity=severity,
                      rule=rule, state=state, message=message, group=group)


CTX = AlertContext(since_wall=WALL0 - 150, recovery="restart 2 of 3, next in 8 s")


async def until(predicate: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    """Wait for a real receiver (apprise sends from worker threads); a bound, not a timing assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------- receivers

class JsonReceiver:
    """An aiohttp server on a free loopback port; each path is one channel. `fail` answers 500 n times."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, int] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path.strip("/")
        if self.fail.get(path, 0) > 0:
            self.fail[path] -= 1
            return web.Response(status=500)
        self.posts.append((path, await request.json()))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str, creds: str = "") -> str:
        return f"json://{creds}127.0.0.1:{self.port}/{path}"

    def to(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.posts if p == path]


@pytest.fixture
async def receiver() -> Any:
    r = JsonReceiver()
    await r.start()
    yield r
    await r.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Harness:
    def __init__(self, channels: list[NotifyConfig], clock: Any, env: dict[str, str] | None = None) -> None:
        self.events: list[NotifyEvent] = []
        self.notifier = Notifier(channels, clock, self.events.append, SERVICES, env=env or {})
        self.task = asyncio.create_task(self.notifier.run())

    def outcomes(self, channel: str | None = None) -> list[tuple[str, str, str, int]]:
        return [(e.channel, e.trigger, e.outcome, e.attempt) for e in self.events
                if channel is None or e.channel == channel]

    async def close(self) -> None:
        self.notifier.close()
        await asyncio.wait_for(self.task, 10)


# ---------------------------------------------------------------- mail

async def test_mail_arrives_at_a_real_smtp_server_with_subject_and_body() -> None:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    port = free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        url = (f"mailto://127.0.0.1:{port}?smtp=127.0.0.1&mode=insecure"
               f"&from=faultwatch@example.org&to=oncall@example.org")
        h = Harness([NotifyConfig(name="oncall-mail", url=url, min_severity="critical")], SystemClock())
        h.notifier.on_alert(alert("firing", wall=WALL0), CTX)
        h.notifier.on_alert(alert("firing", severity="warning", rule="anomaly"), CTX)  # below min_severity
        await until(lambda: len(received) == 1 and bool(h.events), "the mail")
        h.notifier.on_alert(alert("resolved"), CTX)
        await until(lambda: len(received) == 2 and len(h.events) == 2, "the resolution mail")
        await h.close()
    finally:
        smtp.stop()

    assert [r.rcpt_tos for r in received] == [["oncall@example.org"]] * 2
    first = email.message_from_bytes(received[0].content, policy=policy.default)
    assert first["Subject"] == "[CRITICAL] FIRING: PLC 7 (press line) — unhealthy"
    body = first.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert body.splitlines() == [
        "Device: PLC 7 (press line) (plc-7), group line-1",
        "Rule: unhealthy: unhealthy for 30 s",
        "Down for: 2 min 30 s (since 2026-12-01T06:37:30.000Z)",
        "Recovery: restart 2 of 3, next in 8 s",
        "Alert: unhealthy:plc-7 (critical)",
    ]
    second = email.message_from_bytes(received[1].content, policy=policy.default)
    assert second["Subject"] == "[CRITICAL] RESOLVED: PLC 7 (press line) — unhealthy"
    assert h.outcomes() == [("oncall-mail", "firing", "sent", 1), ("oncall-mail", "resolved", "sent", 1)]


# ---------------------------------------------------------------- json, filters, secrets

async def test_json_posts_reach_a_real_receiver_filtered_by_group_tag_and_severity(receiver: JsonReceiver) -> None:
    h = Harness([
        NotifyConfig(name="line-1", url=receiver.url("line1"), groups=("line-1",)),
        NotifyConfig(name="vision", url=receiver.url("vision"), tags=("vision",), min_severity="info"),
        NotifyConfig(name="all-critical", url=receiver.url("all"), min_severity="critical"),
    ], SystemClock())
    h.notifier.on_alert(alert("firing"), CTX)  # plc-7, line-1, critical
    h.notifier.on_alert(alert("firing", service="cam-2", severity="warning", rule="anomaly",
                              message="response time 900 ms, usually 40 ms"))
    h.notifier.on_alert(alert("firing", service="cam-2", severity="info", rule="heartbeat_missed"))
    await until(lambda: len(receiver.posts) == 4, "four posts")
    await h.close()
    assert [b["title"] for b in receiver.to("line1")] == ["[CRITICAL] FIRING: PLC 7 (press line) — unhealthy"]
    assert [b["title"] for b in receiver.to("all")] == ["[CRITICAL] FIRING: PLC 7 (press line) — unhealthy"]
    assert sorted(b["title"] for b in receiver.to("vision")) == [
        "[INFO] FIRING: Camera 2 — heartbeat missed", "[WARNING] FIRING: Camera 2 — anomaly"]
    post = receiver.to("line1")[0]
    assert post["type"] == "failure"
    assert "Recovery: restart 2 of 3, next in 8 s" in post["message"]


async def test_channel_names_events_and_logs_never_carry_secrets(receiver: JsonReceiver,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env = {"FW_NOTIFY_ONCALL": receiver.url("hook/Tok3nTok3n?key=K3yK3y", creds="bob:s3cretpw@")}
    receiver.fail["hook/Tok3nTok3n"] = 1
    clock = FakeClock()
    h = Harness([NotifyConfig(url_env="FW_NOTIFY_ONCALL"), NotifyConfig(url_env="FW_UNSET")], clock, env)
    assert h.notifier.channel_names == [f"json://127.0.0.1:{receiver.port}", "$FW_UNSET"]
    assert h.notifier.problems == ["notify[1] ($FW_UNSET): environment variable FW_UNSET is not set"]
    h.notifier.on_alert(alert("firing"), CTX)
    await until(lambda: any(e.outcome == "failed" for e in h.events), "the failed first attempt")
    await clock.advance(2.0)
    await until(lambda: any(e.outcome == "sent" for e in h.events), "the retry")
    await h.close()
    text = json.dumps([e.to_record() for e in h.events])
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp"))
    assert "sent" in logged  # the delivery was logged, just without secrets
    for secret in ("s3cretpw", "Tok3n", "K3yK3y", "bob"):
        assert secret not in text
        assert secret not in logged
    assert [(e.outcome, e.attempt) for e in h.events] == [("unavailable", 0), ("failed", 1), ("sent", 2)]
    assert h.events[1].detail == "Failed to send JSON POST notification: Internal server error., error=500.; retry in 2 s"


def test_channel_name_redacts_to_scheme_and_host() -> None:
    assert channel_name(NotifyConfig(url="x"), "tgram://123456:ABCDEF@987/") == "tgram://987"
    assert channel_name(NotifyConfig(url="x"), "mailtos://user:pw@mail.example.org:465?to=a@b") == \
        "mailtos://mail.example.org:465"
    assert channel_name(NotifyConfig(name="oncall", url="x"), "ntfy://secret-topic") == "oncall"


# ---------------------------------------------------------------- retries, rate limit, escalation (FakeClock)

async def test_failures_retry_with_backoff_on_the_clock_then_give_up(receiver: JsonReceiver) -> None:
    clock = FakeClock()
    receiver.fail["flaky"] = 2
    receiver.fail["dead"] = 99
    h = Harness([NotifyConfig(name="flaky", url=receiver.url("flaky"), retries=3),
                 NotifyConfig(name="dead", url=receiver.url("dead"), retries=2)], clock)
    h.notifier.on_alert(alert("firing"), CTX)
    await until(lambda: len(h.outcomes("flaky")) == 1 and len(h.outcomes("dead")) == 1, "first attempts")
    assert h.outcomes()[0][2] == "failed"
    assert [e.detail for e in h.events][0].endswith("retry in 2 s")
    await clock.advance(2.0)  # attempt 2 of both
    await until(lambda: len(h.outcomes("flaky")) == 2 and len(h.outcomes("dead")) == 2, "second attempts")
    assert h.events[-1].detail.endswith("retry in 4 s")
    await clock.advance(3.9)
    assert len(h.outcomes("flaky")) == 2  # backoff waits on the clock, not on real time
    await clock.advance(0.1)
    await until(lambda: len(h.outcomes("flaky")) == 3 and len(h.outcomes("dead")) == 3, "third attempts")
    await h.close()
    assert h.outcomes("flaky") == [("flaky", "firing", "failed", 1), ("flaky", "firing", "failed", 2),
                                   ("flaky", "firing", "sent", 3)]
    assert h.outcomes("dead") == [("dead", "firing", "failed", 1), ("dead", "firing", "failed", 2),
                                  ("dead", "firing", "gave_up", 3)]
    assert len(receiver.to("flaky")) == 1 and receiver.to("dead") == []


async def test_rate_limit_per_channel_delays_a_flood_without_losing_it(receiver: JsonReceiver) -> None:
    clock = FakeClock()
    h = Harness([NotifyConfig(name="chat", url=receiver.url("chat"), per_minute=2),
                 NotifyConfig(name="pager", url=receiver.url("pager"), per_minute=60)], clock)
    for i in range(4):
        h.notifier.on_alert(alert("firing", rule=f"rule_{i}"), CTX)
    await until(lambda: len(receiver.to("pager")) == 4 and len(receiver.to("chat")) == 2, "the burst")
    await until(lambda: ("chat", "firing", "rate_limited", 0) in h.outcomes(), "the wait")
    assert len(receiver.to("chat")) == 2  # the other channel did not wait for this one
    await clock.advance(30.0)
    await until(lambda: len(receiver.to("chat")) == 3, "one more after 30 s")
    await clock.advance(30.0)
    await until(lambda: len(receiver.to("chat")) == 4, "the last after 60 s")
    await h.close()
    assert [b["title"].rsplit("— ", 1)[1] for b in receiver.to("chat")] == ["rule 0", "rule 1", "rule 2", "rule 3"]


async def test_unacknowledged_critical_alert_escalates_to_the_next_channels(receiver: JsonReceiver) -> None:
    clock = FakeClock(start_wall=WALL0)
    h = Harness([
        NotifyConfig(name="shift", url=receiver.url("shift"), min_severity="warning"),
        NotifyConfig(name="supervisor", url=receiver.url("supervisor"), escalate_after_minutes=15),
        NotifyConfig(name="manager", url=receiver.url("manager"), escalate_after_minutes=60),
    ], clock)
    n = h.notifier
    n.on_alert(alert("firing", wall=WALL0), AlertContext(recovery="gave up after 3 restarts"))
    n.on_alert(alert("firing", service="cam-2", severity="warning", rule="anomaly", wall=WALL0))
    n.on_alert(alert("firing", service="cam-2", rule="breaker_open", wall=WALL0))  # critical, acked below
    await until(lambda: len(receiver.to("shift")) == 3, "first-line posts")
    assert n.next_deadline() == clock.monotonic() + 900
    n.on_alert(alert("acknowledged", service="cam-2", rule="breaker_open"))
    await clock.advance(899)
    n.poll()
    assert receiver.to("supervisor") == [] and not any(e.channel == "supervisor" for e in h.events)
    await clock.advance(1)
    n.poll()
    await until(lambda: len(receiver.to("supervisor")) == 1, "the escalation")
    post = receiver.to("supervisor")[0]
    assert post["title"] == "[CRITICAL] ESCALATED: PLC 7 (press line) — unhealthy"
    assert "Unacknowledged for 15 min; down for 15 min" in post["message"]
    assert "Recovery: gave up after 3 restarts" in post["message"]
    n.poll()  # once per tier, not per poll
    assert n.next_deadline() == clock.monotonic() + 45 * 60
    # Acknowledged before the second tier: the manager is never called, and nothing is pending.
    n.on_alert(alert("acknowledged"))
    assert n.next_deadline() is None
    await clock.advance(3600)
    n.poll()
    n.on_alert(alert("resolved", wall=WALL0 + 4500))
    await until(lambda: len(receiver.to("supervisor")) == 2 and len(receiver.to("shift")) == 4, "resolutions")
    await h.close()
    assert receiver.to("manager") == []
    assert receiver.to("supervisor")[1]["title"] == "[CRITICAL] RESOLVED: PLC 7 (press line) — unhealthy"
    assert ("supervisor", "escalated", "sent", 1) in h.outcomes()


async def test_silenced_alerts_neither_notify_nor_escalate(receiver: JsonReceiver) -> None:
    clock = FakeClock()
    h = Harness([NotifyConfig(name="shift", url=receiver.url("shift")),
                 NotifyConfig(name="boss", url=receiver.url("boss"), escalate_after_minutes=1)], clock)
    n = h.notifier
    n.on_alert(alert("firing"))
    n.on_alert(alert("silenced"))
    await clock.advance(120)
    n.poll()
    n.on_alert(alert("resolved"))
    n.on_alert(alert("firing"))  # back while still silenced: no new notice
    await until(lambda: len(receiver.to("shift")) == 2, "firing and resolved")
    await h.close()
    assert [b["title"].split(":")[0] for b in receiver.to("shift")] == ["[CRITICAL] FIRING", "[CRITICAL] RESOLVED"]
    assert receiver.to("boss") == []


async def test_a_slow_channel_never_blocks_the_caller() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def stuck(url: str, message: Any) -> tuple[bool, str]:
        started.set()
        await release.wait()
        return True, ""

    events: list[NotifyEvent] = []
    n = Notifier([NotifyConfig(name="slow", url="json://127.0.0.1:9/x")], FakeClock(), events.append,
                 SERVICES, deliver=stuck, queue_size=3)
    task = asyncio.create_task(n.run())
    n.on_alert(alert("firing", rule="r0"))
    await asyncio.wait_for(started.wait(), 5)
    for i in range(1, 6):  # all return at once although the channel is stuck
        n.on_alert(alert("firing", rule=f"r{i}"))
    assert [(e.outcome, e.alert_id) for e in events] == [("dropped", "r1:plc-7"), ("dropped", "r2:plc-7")]
    release.set()
    await asyncio.sleep(0)
    n.close()
    await asyncio.wait_for(task, 5)
    assert n.dropped == 2


def test_notify_tables_load_and_bad_ones_are_refused() -> None:
    cfg = parse_config('[[notify]]\nurl_env = "FW_NOTIFY_ONCALL"\nmin_severity = "critical"\n'
                       'groups = ["line-1"]\nescalate_after_minutes = 15\n')
    assert cfg.notify == (NotifyConfig(url_env="FW_NOTIFY_ONCALL", min_severity="critical", groups=("line-1",),
                                       escalate_after_minutes=15.0),)
    from core.config import ConfigError

    for text, error in [
        ('[[notify]]\nmin_severity = "critical"\n', "notify[0]: give exactly one of 'url' or 'url_env'"),
        ('[[notify]]\nurl = "hunter2"\n', "notify[0].url: is not an apprise URL (scheme://...)"),
        ('[[notify]]\nurl = "json://x"\nmin_severity = "fatal"\n', "notify[0].min_severity: 'fatal' is not one"),
        ('[[notify]]\nurl = "json://x"\nescalate_after_minutes = -1\n', "notify[0].escalate_after_minutes: must be"),
        ('[notify]\nurl = "json://x"\n', "notify: expected an array of tables ([[notify]])"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_config(text, label="x.toml")
        assert str(err.value).startswith(f"x.toml: {error}"), str(err.value)
        assert "hunter2" not in str(err.value)


def test_recovery_words_for_the_context() -> None:
    from core.events import RecoveryState
    from core.notify import recovery_words
    from core.snapshot import RecoveryView

    waiting = RecoveryView("r1", "restart", RecoveryState.WAITING, 2, 3, 1008.0, "")
    assert recovery_words(waiting, 1000.0) == "restart 2 of 3, next in 8 s"
    assert recovery_words(RecoveryView("r1", "restart", RecoveryState.VERIFYING, 1, 3, None, ""), 0) == "restart 1 of 3 verifying"
    assert recovery_words(RecoveryView("r1", "restart", RecoveryState.GAVE_UP, 3, 3, None, ""), 0) == \
        "restart gave up after 3 of 3"
    assert recovery_words(waiting, 0, blocked_by="switch-3") == "held: blocked by switch-3"
    assert recovery_words(None, 0, maintenance=True) == "held: in maintenance"
    assert recovery_words(None, 0, has_restart=False) == "no restart action configured"
    assert recovery_words(None, 0) == ""
