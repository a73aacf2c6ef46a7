"""Response-time anomaly detection: is this service suddenly slower than its own normal?

One `LatencyAnomalyDetector` per service. Each latency sample is scored twice, against an EWMA
mean/variance (fast, but pulled around by outliers) and against a rolling median/MAD (slow to move,
robust to outliers). A sample counts as anomalous only when *both* scores exceed their thresholds;
k anomalous samples among the last n raise one `AnomalyEvent`, and no further event is raised until
the k-of-n window has emptied again.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

from core.clock import Clock
from core.config import AnomalyConfig
from core.events import AnomalyEvent
from core.logs import ANOMALY as log


DETECTOR_NAME = "ewma+mad"

# 0.6745 is the 75th percentile of the standard normal: it scales a MAD so that the robust score
# is comparable to a z-score for gaussian data (Iglewicz & Hoaglin's "modified z-score").
_MAD_SCALE = 0.6745
# Floors for the spread estimates. Some devices answer in exactly the same time for hours; a spread
# of zero would turn a 1 ms wobble into an "infinite" score. 1 % of the level or 0.5 ms, whichever
# is larger, is below any deviation an operator would care about.
_SPREAD_FLOOR_FRACTION = 0.01
_SPREAD_FLOOR_MS = 0.5
# Statistics are computed on samples clamped to this (about 11.5 days). No real latency gets near
# it, and it keeps squares and ratios finite for absurd inputs (1e308 ms) instead of overflowing.
_MAX_MS = 1e9


class LatencyAnomalyDetector:
    """Flags upward latency anomalies for one service.

    Why both scorers must agree (AND, not OR): on noisy-but-normal latency each scorer alone has
    its own failure mode. The EWMA variance shrinks during a quiet stretch, so an ordinary noise
    burst afterwards produces big z-scores; the median/MAD, on a very flat series, has a tiny MAD,
    so a harmless 1-2 ms wobble scores high. Requiring both removes most of either's false alarms,
    while a real slowdown (a step or a sustained rise) trips both at once. k-of-n then removes
    isolated spikes.

    How the baseline follows the service: every sample, anomalous or not, enters the rolling
    median window. A median ignores a minority of outliers, so spikes do not move it; but once a
    new level fills half of the window (about mad_window/2 samples), the median *is* the new level,
    the robust score falls below threshold and the shift has become the new normal. The EWMA is
    fed anomalous samples winsorized to mean + z_threshold*sd, so a spike moves it only by a bounded
    step; once samples stop being anomalous (the median has re-baselined) it takes them in full
    and converges.

    Attributes:
        service: the service id this detector watches.
        baseline_ms: the rolling median latency, or None until warmup is done.
    """

    def __init__(self, service: str, config: AnomalyConfig, clock: Clock) -> None:
        self.service = service
        self._clock = clock
        self._config = config
        self._seen = 0
        self._ewma_mean: float | None = None
        self._ewma_var = 0.0
        self._window: deque[float] = deque()  # arrival order, for eviction
        self._sorted: list[float] = []  # the same samples, sorted, for the median
        self._flags: deque[bool] = deque(maxlen=config.n)
        self._latched = False  # an event was raised and the k-of-n window has not emptied since
        # Anomalous samples wait here until the anomaly is raised: before that they are suspects, and
        # letting them into the baseline would let a fresh jump become its own normal.
        self._held: list[float] = []

    # ------------------------------------------------------------------ public

    @property
    def baseline_ms(self) -> float | None:
        if self._seen < self._config.warmup_samples or not self._sorted:
            return None
        return _median(self._sorted)

    def set_config(self, config: AnomalyConfig) -> None:
        """Apply new settings without forgetting what has been learned."""
        self._config = config
        while len(self._window) > config.mad_window:
            self._evict_oldest()
        if self._flags.maxlen != config.n:
            self._flags = deque(self._flags, maxlen=config.n)
        if not any(self._flags):
            self._latched = False

    def observe(self, latency_ms: float) -> AnomalyEvent | None:
        """Feed one successful check's latency; returns an event when an anomaly starts."""
        if not math.isfinite(latency_ms) and latency_ms != math.inf:
            return None  # NaN carries no information; +inf is clamped below like any huge value
        if latency_ms < 0:
            return None  # a clock hiccup in the prober, not a latency
        cfg = self._config
        x = min(latency_ms, _MAX_MS)

        judged = self._seen >= cfg.warmup_samples and bool(self._sorted)
        anomalous = False
        robust = 0.0
        median = 0.0
        if judged:
            median, robust = self._robust_score(x)
            z = self._ewma_z(x)
            anomalous = (
                cfg.enabled
                and x >= cfg.min_latency_ms
                and robust > cfg.mad_threshold
                and z > cfg.z_threshold
            )

        self._flags.append(anomalous)
        count = sum(self._flags)
        if count == 0:
            self._latched = False
            self._held.clear()  # isolated spikes that never made an anomaly stay out of the baseline
        raised = count >= cfg.k and not self._latched
        if anomalous and not self._latched and not raised:
            self._held.append(x)
            self._seen += 1
        else:
            if raised:
                for held in self._held:
                    self._learn(held, True)
                    self._seen -= 1  # counted when held
                self._held.clear()
            self._learn(x, anomalous)
        if raised:
            self._latched = True
            log.info("%s: latency anomaly %.1f ms (baseline %.1f ms, score %.1f)",
                     self.service, latency_ms, median, robust)
            return AnomalyEvent(
                service=self.service,
                mono=self._clock.monotonic(),
                wall=self._clock.wall(),
                latency_ms=x,
                baseline_ms=median,
                score=robust,
                detector=DETECTOR_NAME,
            )
        return None

    # ------------------------------------------------------------------ scoring

    def _robust_score(self, x: float) -> tuple[float, float]:
        median = _median(self._sorted)
        mad = _median(sorted(abs(v - median) for v in self._sorted))
        spread = max(mad, _SPREAD_FLOOR_FRACTION * median, _SPREAD_FLOOR_MS)
        return median, _finite(_MAD_SCALE * (x - median) / spread)

    def _ewma_z(self, x: float) -> float:
        mean = self._ewma_mean if self._ewma_mean is not None else x
        return _finite((x - mean) / self._ewma_sd(mean))

    def _ewma_sd(self, mean: float) -> float:
        return max(math.sqrt(self._ewma_var), _SPREAD_FLOOR_FRACTION * abs(mean), _SPREAD_FLOOR_MS)

    # ------------------------------------------------------------------ learning

    def _learn(self, x: float, anomalous: bool) -> None:
        self._seen += 1
        # The median window takes every sample: that is what lets a lasting shift win (see class doc).
        self._window.append(x)
        bisect.insort(self._sorted, x)
        while len(self._window) > self._config.mad_window:
            self._evict_oldest()

        if self._ewma_mean is None:
            self._ewma_mean = x
            return
        mean = self._ewma_mean
        if anomalous:
            x = min(x, mean + self._config.z_threshold * self._ewma_sd(mean))
        alpha = self._config.ewma_alpha
        diff = x - mean
        incr = alpha * diff
        # West/Finch incremental form: one pass, no stored history, same alpha for mean and variance.
        self._ewma_mean = mean + incr
        self._ewma_var = (1.0 - alpha) * (self._ewma_var + diff * incr)

    def _evict_oldest(self) -> None:
        old = self._window.popleft()
        del self._sorted[bisect.bisect_left(self._sorted, old)]


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    if n % 2:
        return sorted_values[mid]
    return (sorted_values[mid - 1] + sorted_values[mid]) / 2.0


def _finite(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return max(-1e300, min(1e300, value))
