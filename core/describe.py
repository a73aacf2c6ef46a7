"""Events and figures in a technician's words: one wording for the terminal, the timeline and exports.

Pure functions; the headless stream and the GUI timeline both use them, so an event reads the same
wherever it is seen.
"""

from __future__ import annotations

from core.events import (ActionEvent, AlertEvent, AnomalyEvent, BreakerEvent, BreakerState, Event, HeartbeatEvent,
                         NotifyEvent, ProbeEvent, RebootEvent, RecoveryEvent, RecoveryOutcome, ServiceStatus)

VALUE_TEXT_MAX = 40  # a string value (an MQTT message, a DNS answer) is cut here in one-line views


def format_ms(value: float | None) -> str:
    """Milliseconds for a cell: "0.4", "3.2" below 10 ms (loopback and LAN devices answer in
    fractions of a millisecond, which "0" would hide), "312" above, "12 s" from 10 s."""
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value / 1000:.0f} s"
    if value < 9.95:
        return f"{value:.1f}"
    return f"{value:.0f}"


def format_value(value: float | str | bool | None) -> str:
    """A value a check read, without a unit (the check knows what it means, the cell does not):
    "1,234" for large numbers, "23.4" / "0.0123" (about 3 significant digits) below, "true", a
    string cut to VALUE_TEXT_MAX characters; "—" for none."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return format_value(int(value))
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.3g}"
    text = " ".join(str(value).split())
    return text if len(text) <= VALUE_TEXT_MAX else text[:VALUE_TEXT_MAX - 1] + "…"


def check_word(check_type: str) -> str:
    """A check type as a word for a column or a sentence: "HTTP", "MODBUS", "OPC UA"."""
    return _CHECK_WORDS.get(check_type, check_type.replace("_", " ").upper())


# Only names that do not read right in capitals; every other type is its own name, upper-cased.
_CHECK_WORDS = {"opcua": "OPC UA"}


def _state_word(state: BreakerState | str) -> str:
    value = state.value if isinstance(state, BreakerState) else str(state)
    return value.replace("_", "-").upper()


def describe_event(event: Event) -> tuple[str, str]:
    """(what happened, why/origin) for one event, in the technician's words."""
    if isinstance(event, ProbeEvent):
        status = event.status.value if isinstance(event.status, ServiceStatus) else str(event.status)
        what = status.upper()
        if event.latency_ms is not None:
            what += f" {format_ms(event.latency_ms)} ms"
        if event.value is not None:
            what += f", read {format_value(event.value)}"
        if event.consecutive_failures:
            what += f" ({event.consecutive_failures} consecutive failures)"
        why = event.error or (f"via {event.endpoint}" if event.endpoint else "")
        if not why and event.check != "http":
            why = f"{check_word(event.check)} check"
        return what, why
    if isinstance(event, RebootEvent):
        return "rebooted by itself", event.reason
    if isinstance(event, BreakerEvent):
        why = f"{event.reason} · blocked by {event.blocked_by}" if event.blocked_by else event.reason
        return f"breaker {_state_word(event.from_state)} → {_state_word(event.to_state)}", why
    if isinstance(event, RecoveryEvent):
        outcome = event.outcome.value if isinstance(event.outcome, RecoveryOutcome) else str(event.outcome)
        what = f"{event.strategy} {event.attempt}/{event.max_attempts} {outcome.replace('_', ' ')}"
        if event.delay_s:
            what += f" after {event.delay_s:.0f} s"
        why = "; ".join(p for p in (event.failure_type.replace("_", " "), event.detail) if p)
        return what, why
    if isinstance(event, HeartbeatEvent):
        what = f"heartbeat {event.status}"
        why = "" if event.last_beat_age_s is None else f"last beat {event.last_beat_age_s:.0f} s ago"
        return what, why
    if isinstance(event, AnomalyEvent):
        what = f"latency anomaly {format_ms(event.latency_ms)} ms (baseline {format_ms(event.baseline_ms)} ms)"
        why = f"score {event.score:.1f}" + (f" ({event.detector})" if event.detector else "")
        return what, why
    if isinstance(event, AlertEvent):
        return f"{event.severity} alert {event.state}: {event.message}", f"rule {event.rule}"
    if isinstance(event, ActionEvent):
        what = f"{event.command.replace('_', ' ')} {'done' if event.ok else 'FAILED'}"
        why = f"by {event.origin}" + (f": {event.detail}" if event.detail else "")
        return what, why
    if isinstance(event, NotifyEvent):
        what = f"{event.trigger} notice to {event.channel} {event.outcome.replace('_', ' ')}"
        if event.attempt > 1:
            what += f" (attempt {event.attempt})"
        return what, "; ".join(p for p in (event.alert_id, event.detail) if p)
    record = event.to_record()
    return event.KIND, ", ".join(f"{k}={v}" for k, v in record.items() if k not in ("ts", "seq", "kind", "service"))
