"""Events and figures in a technician's words: one wording for the terminal, the timeline and exports.

Pure functions; the headless stream and the GUI timeline both use them, so an event reads the same
wherever it is seen.
"""

from __future__ import annotations

from core.events import (ActionEvent, AlertEvent, AnomalyEvent, BreakerEvent, BreakerState, Event, HeartbeatEvent,
                         NotifyEvent, ProbeEvent, RecoveryEvent, RecoveryOutcome, ServiceStatus)


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
        if event.consecutive_failures:
            what += f" ({event.consecutive_failures} consecutive failures)"
        why = event.error or (f"via {event.endpoint}" if event.endpoint else "")
        return what, why
    if isinstance(event, BreakerEvent):
        return f"breaker {_state_word(event.from_state)} → {_state_word(event.to_state)}", event.reason
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
