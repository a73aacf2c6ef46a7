"""gui/chart.LatencyChart: data in the plot items, ring buffer, failures, thresholds, range, markers."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.events import BreakerState, ServiceStatus
from core.snapshot import BreakerView, ServiceSnapshot
from gui import chart as chart_mod
from gui import palette
from gui.chart import LatencyChart

NOW = 1_700_000_000.0


def make_snap(id: str = "svc-1", *, slow: float = 250.0, timeout: float = 1000.0) -> ServiceSnapshot:
    return ServiceSnapshot(
        id=id, name=f"{id} name", group="rack-a", endpoint="http://x", active_endpoint="http://x",
        active_endpoint_index=0, status=ServiceStatus.HEALTHY, failed=False, consecutive_failures=0,
        last_latency_ms=12.0, p50_ms=10.0, p95_ms=20.0, last_check_wall=None, last_ok_wall=None,
        last_error=None, stale=False, breaker=BreakerView(BreakerState.CLOSED, 0, 0, 1, 0, 1, 5, None),
        recovery=None, paused=False, maintenance=False, maintenance_until_wall=None, heartbeat="",
        storm_tripped=False, slow_threshold_ms=slow, timeout_ms=timeout, check_interval_s=1.0,
        restart_action="", checks_total=0, restarts_total=0)


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def chart(qtbot, clock):
    c = LatencyChart(clock=clock, capacity=64)
    qtbot.addWidget(c)
    c.resize(900, 300)
    c.set_service(make_snap())
    return c


def test_object_name_and_default_range(chart):
    assert chart.objectName() == "latency_chart"
    assert chart.range_seconds() == 300


def test_set_history_puts_the_points_in_the_plot_item(chart):
    pts = [(NOW - 30 + i, 10.0 + i) for i in range(30)]
    chart.set_history(pts)
    chart.redraw_now()
    x, y = chart._curve.getOriginalDataset()  # the one PlotDataItem, not a copy kept elsewhere
    np.testing.assert_array_equal(x, [p[0] for p in pts])
    np.testing.assert_array_equal(y, [p[1] for p in pts])


def test_set_history_replaces_previous_data(chart):
    chart.set_history([(NOW - 5, 1.0), (NOW - 4, 2.0)])
    chart.set_history([(NOW - 1, 9.0)])
    chart.redraw_now()
    x, y = chart.curve_data()
    assert list(x) == [NOW - 1] and list(y) == [9.0]


def test_add_point_appends_without_redrawing(chart):
    chart.set_history([(NOW - 2, 5.0)])
    chart.redraw_now()
    draws = chart.redraw_count
    chart.add_point(NOW - 1, 7.0)
    chart.add_point(NOW, 8.0)
    assert chart.redraw_count == draws  # drawing is the timer's job
    chart.redraw_now()
    x, y = chart.curve_data()
    assert list(x) == [NOW - 2, NOW - 1, NOW] and list(y) == [5.0, 7.0, 8.0]


def test_ring_buffer_wraps_at_capacity_without_reallocating(chart):
    ring = chart._ring
    xbuf, ybuf = ring.x, ring.y
    for i in range(64 + 10):
        chart.add_point(NOW - 100 + i, float(i))
    assert ring.x is xbuf and ring.y is ybuf
    assert ring.count == 64
    chart.redraw_now()
    x, y = chart.curve_data()
    assert len(x) == 64
    assert list(y) == [float(i) for i in range(10, 74)]  # oldest dropped, order kept
    assert np.all(np.diff(x) > 0)


def test_failures_appear_in_the_failure_scatter_and_as_gaps(chart):
    chart.set_history([(NOW - 3, 10.0), (NOW - 2, None), (NOW - 1, 12.0)])
    chart.add_point(NOW, None)
    chart.redraw_now()
    np.testing.assert_array_equal(np.sort(chart.failure_x()), [NOW - 2, NOW])
    _, y = chart.curve_data()
    assert np.isnan(y[1]) and np.isnan(y[3])  # the line breaks at a failed check too


def test_threshold_lines_at_the_snapshot_values(chart):
    chart.set_service(make_snap(slow=300.0, timeout=1500.0))
    assert chart._slow_line.value() == 300.0
    assert chart._timeout_line.value() == 1500.0
    assert chart._slow_line.isVisible() and chart._timeout_line.isVisible()
    assert chart._slow_line.label.toPlainText().strip() == "slow 300 ms"
    assert chart._timeout_line.label.toPlainText().strip() == "timeout 1.5 s"
    assert QtColor(chart._slow_line.pen.color()) == palette.LIGHT.warning
    assert QtColor(chart._timeout_line.pen.color()) == palette.LIGHT.critical
    assert chart._timeout_line.pen.style() == Qt.PenStyle.DashLine


def QtColor(c) -> str:  # noqa: N802 - reads like a conversion
    return c.name()


def _y_top(chart) -> float:
    (_, _), (ylo, yhi) = chart._plot.getPlotItem().getViewBox().viewRange()
    assert ylo <= 0.0
    return yhi


def test_y_range_fits_low_latencies_and_notes_thresholds_above_it(chart):
    # 1-20 ms against slow 250 ms / timeout 1 s: the line must fill the chart, not lie on the floor.
    chart.set_history([(NOW - 20 + i, 1.0 + i) for i in range(20)])
    chart.redraw_now()
    assert 20.0 < _y_top(chart) <= 30.0
    assert chart.above_range_text() == "slow 250 ms ↑ · timeout 1 s ↑"
    assert chart._above_note.isVisible()


def test_slow_threshold_in_reach_is_drawn_in_range(chart):
    chart.set_history([(NOW - 10 + i, 100.0) for i in range(10)])  # slow 250 is within 3x of 100
    chart.redraw_now()
    assert 250.0 < _y_top(chart) < 1000.0
    assert chart.above_range_text() == "timeout 1 s ↑"


def test_both_thresholds_in_range_when_latency_is_high(chart):
    chart.set_history([(NOW - 10 + i, 600.0) for i in range(10)])
    chart.redraw_now()
    assert _y_top(chart) > 1000.0
    assert chart.above_range_text() == ""
    assert not chart._above_note.isVisible()


def test_y_range_has_a_floor_and_a_spike_is_never_clipped(chart):
    chart.set_history([(NOW - 10 + i, 0.3) for i in range(10)])
    chart.redraw_now()
    assert _y_top(chart) == pytest.approx(chart_mod.Y_FLOOR_MS)
    chart.add_point(NOW, 4000.0)  # above the timeout
    chart.redraw_now()
    assert _y_top(chart) >= 4000.0
    chart.set_history([])
    chart.redraw_now()
    assert _y_top(chart) == pytest.approx(chart_mod.Y_FLOOR_MS)


def test_set_service_clears_and_retitles(chart):
    chart.set_history([(NOW - 1, 5.0)])
    chart.add_marker(NOW - 1, "anomaly", "spike")
    chart.set_service(make_snap("other"))
    chart.redraw_now()
    assert len(chart.curve_data()[0]) == 0
    assert len(chart._anomaly_scatter.points()) == 0
    assert chart._title.text() == "other name"
    chart.set_service(None)
    assert not chart._slow_line.isVisible()


def test_x_range_follows_now(chart, clock):
    chart.set_history([(NOW - 10, 5.0)])
    chart.redraw_now()
    (x0, x1), _ = chart._plot.getPlotItem().getViewBox().viewRange()
    assert x0 == pytest.approx(NOW - 300) and x1 == pytest.approx(NOW)
    clock.t += 60
    chart.redraw_now()
    (x0, x1), _ = chart._plot.getPlotItem().getViewBox().viewRange()
    assert x1 == pytest.approx(NOW + 60)


@pytest.mark.parametrize("seconds", [3600, 86400, 300])
def test_range_buttons_emit_range_changed(chart, qtbot, seconds):
    if seconds == 300:  # already selected: switch away first so the click is a change
        chart.findChild(type(chart._buttons.button(3600)), "range_3600").click()
    button = chart.findChild(type(chart._buttons.button(300)), f"range_{seconds}")
    with qtbot.waitSignal(chart.range_changed, timeout=1000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert blocker.args == [seconds]
    assert chart.range_seconds() == seconds
    assert button.isChecked()
    others = [b for b in chart._buttons.buttons() if b is not button]
    assert not any(b.isChecked() for b in others)


def test_markers_are_bounded(chart):
    for i in range(chart_mod.MAX_ANOMALY_MARKERS + 30):
        chart.add_marker(NOW - 200 + i, "anomaly", "spike")
    for i in range(chart_mod.MAX_BREAKER_MARKERS + 15):
        chart.add_marker(NOW - 200 + i, "breaker", "OPEN" if i % 2 else "CLOSED")
    chart.redraw_now()
    chart.redraw_now()  # items are reused, not added again
    xs = sorted(p.pos().x() for p in chart._anomaly_scatter.points())
    assert len(xs) == chart_mod.MAX_ANOMALY_MARKERS
    assert xs[0] == NOW - 200 + 30  # the oldest were dropped
    visible = [ln for ln in chart._breaker_lines if ln.isVisible()]
    assert len(chart._breaker_lines) == len(visible) == chart_mod.MAX_BREAKER_MARKERS
    assert {ln.label.toPlainText().strip() for ln in visible} == {"OPEN", "CLOSED"}


def test_unknown_marker_kind_is_rejected(chart):
    with pytest.raises(ValueError):
        chart.add_marker(NOW, "sparkle", "?")


def test_timer_redraws_only_when_dirty_and_visible(chart, qtbot, clock):
    chart.add_point(NOW, 5.0)
    before = chart.redraw_count
    chart._on_timer_timeout()  # hidden: nothing
    assert chart.redraw_count == before
    chart.show()
    qtbot.waitExposed(chart)
    chart._on_timer_timeout()
    assert chart.redraw_count == before + 1
    chart._on_timer_timeout()  # clean and no time passed: nothing
    assert chart.redraw_count == before + 1
    clock.t += 2  # idle, but the time axis must scroll
    chart._on_timer_timeout()
    assert chart.redraw_count == before + 2


def test_redraw_rate_is_bounded(chart):
    assert chart._timer.interval() >= 100  # ≤ 10 Hz


def test_day_range_merges_live_points_into_peaks(chart):
    chart.set_range_seconds(86400)
    for i in range(120):  # two minutes at 1 s
        chart.add_point(NOW - 120 + i, 100.0 if i == 30 else 10.0)
    chart.redraw_now()
    x, y = chart.curve_data()
    assert len(x) <= 3
    assert y.max() == 100.0  # the peak survives


def test_long_history_is_reduced_keeping_peaks_and_failures(chart):
    pts = [(NOW - 1000 + i, 10.0) for i in range(1000)]
    pts[500] = (pts[500][0], 900.0)
    pts[700] = (pts[700][0], None)
    chart.set_history(pts)
    chart.redraw_now()
    x, y = chart.curve_data()
    assert len(x) <= 64
    assert np.nanmax(y) == 900.0
    assert list(chart.failure_x()) == [NOW - 300]


def test_theme_switch_and_redraw_duration(chart):
    chart.set_theme(palette.DARK)
    chart.set_history([(NOW - i, 5.0) for i in range(50, 0, -1)])
    chart.show()
    ms = chart.redraw_now(paint=True)
    assert ms > 0 and chart.last_redraw_duration_ms() == ms
    assert chart._timeout_line.pen.color().name() == palette.DARK.critical


def test_a_breaker_move_behind_a_down_parent_is_a_grey_line(qtbot):  # type: ignore[no-untyped-def]
    chart = LatencyChart()
    qtbot.addWidget(chart)
    chart.add_marker(100.0, "breaker", "OPEN")
    chart.add_marker(130.0, "breaker", "OPEN", quiet=True)
    assert chart.breaker_markers() == [(100.0, "OPEN", "critical"), (130.0, "OPEN", "normal")]
