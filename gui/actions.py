"""Every operator action as a QAction (menus, toolbar, context menu, shortcuts), and how it reaches
the engine: an asyncio task awaiting an EngineControl command with origin "gui".

Nothing here decides anything about fault tolerance; it asks the operator where an action is
destructive (restart, force open: the confirmation names the devices and says what will happen),
sends the command, and reports the CommandResult. Shortcuts (also in docs/automation.md):

    Ctrl+O           File → Open config…          Ctrl+Shift+O  Force breaker open…
    Ctrl+Shift+C     Force breaker closed         Ctrl+Shift+R  Reset breaker
    Ctrl+R           Restart…                     Ctrl+P        Pause / resume checks
    Ctrl+M           Maintenance (device)         Ctrl+Shift+M  Maintenance (whole group)
    Ctrl+Shift+A     Acknowledge alerts           Ctrl+F        Find (filter box)
    F11              Wall mode (Esc leaves)       Ctrl+Q        Quit
    Ctrl+N           Add device…                  Ctrl+E        Edit device…
    Ctrl+D           Duplicate device…            Del           Remove device…
    Ctrl+I           Import devices…              Ctrl+Shift+E  Export devices…
    Ctrl+Shift+P     File → Reports…
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Mapping, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox, QWidget

from core.snapshot import AlertView, CommandResult, EngineControl, ServiceSnapshot
from gui.alert_banner import unacknowledged

log = logging.getLogger("gui.actions")

ORIGIN = "gui"
Confirm = Callable[[str, str], bool]  # (title, text) -> proceed?

SHORTCUTS: dict[str, str] = {
    "action_open_config": "Ctrl+O",
    "action_connect_engine": "Ctrl+Shift+E",
    "action_force_open": "Ctrl+Shift+O",
    "action_force_close": "Ctrl+Shift+C",
    "action_reset_breaker": "Ctrl+Shift+R",
    "action_restart": "Ctrl+R",
    "action_pause": "Ctrl+P",
    "action_maintenance": "Ctrl+M",
    "action_maintenance_group": "Ctrl+Shift+M",
    "action_acknowledge": "Ctrl+Shift+A",
    "action_find": "Ctrl+F",
    "action_group_by_dependency": "Ctrl+Shift+G",
    "action_reports": "Ctrl+Shift+P",
    "action_wall_mode": "F11",
    "action_quit": "Ctrl+Q",
    "action_add_device": "Ctrl+N",
    "action_edit_device": "Ctrl+E",
    "action_duplicate_device": "Ctrl+D",
    "action_remove_device": "Del",
    "action_import_devices": "Ctrl+I",
    "action_export_devices": "Ctrl+Shift+E",
}

_LIST_LIMIT = 8


def make_action(owner: QObject, name: str, text: str, tip: str, slot: Callable[[], object],
                checkable: bool = False) -> QAction:
    """A QAction with its stable objectName and shortcut, the shortcut also shown in its tooltip."""
    action = QAction(text, owner)
    action.setObjectName(name)
    shortcut = SHORTCUTS.get(name)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
        tip = f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})"
    action.setToolTip(tip)
    action.setStatusTip(tip)
    action.setCheckable(checkable)
    action.triggered.connect(lambda _checked=False, run=slot: run())
    return action


def name_list(snaps: Sequence[ServiceSnapshot]) -> str:
    """"PLC line 1", "PLC line 1 and Pump 2", "A, B, C and 4 more"."""
    names = [s.name for s in snaps]
    if len(names) <= 1:
        return "".join(names)
    if len(names) <= _LIST_LIMIT:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:_LIST_LIMIT]) + f" and {len(names) - _LIST_LIMIT} more"


def restart_question(snaps: Sequence[ServiceSnapshot]) -> str:
    """The restart confirmation: names each device with its restart action, says what will happen."""
    with_action = [s for s in snaps if s.restart_action]
    without = [s for s in snaps if not s.restart_action]
    lines: list[str] = []
    if len(with_action) == 1:
        s = with_action[0]
        lines.append(f"Restart {s.name} ({s.restart_action})? "
                     "The device will be unavailable while it reboots.")
    elif with_action:
        shown = with_action[:_LIST_LIMIT]
        lines.append(f"Restart {len(with_action)} devices?")
        lines.extend(f"  • {s.name} ({s.restart_action})" for s in shown)
        if len(with_action) > len(shown):
            lines.append(f"  • and {len(with_action) - len(shown)} more")
        lines.append("The devices will be unavailable while they reboot.")
    if without:
        lines.append(f"No restart action is configured for {name_list(without)}; "
                     "the engine will report that.")
    return "\n".join(lines)


def force_open_question(snaps: Sequence[ServiceSnapshot]) -> str:
    who = name_list(snaps)
    return (f"Force the breaker of {who} open? Calls to "
            f"{'it' if len(snaps) == 1 else 'them'} are blocked and automatic recovery stops until "
            "you force the breaker closed or reset it.")


def default_confirm(parent: QWidget | None) -> Confirm:
    """A modal Yes/Cancel question; Cancel is the default button (these actions are destructive)."""
    def confirm(title: str, text: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
        box.setObjectName("confirm_dialog")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Yes
    return confirm


class ServiceActions(QObject):
    """The console's QActions and the commands they send.

    Attributes:
        engine: the EngineControl commands go to.
        actions: objectName → QAction.
        tasks: command tasks still running (tests await `wait_idle()`; shutdown cancels them).
        confirm: (title, text) → bool, asked before destructive actions (injectable for tests).
        read_only: ids → the engines among their owners attached with a viewer token (a MultiEngine's
            `read_only_engines`); their commands are greyed out instead of answered with 403.

    Signals:
        message(str, int): a brief status-bar notice and its timeout in ms.
        progress_changed(str): a long command's progress text ("" when it finished).
        command_finished(str, object): command name and its CommandResult.
    """

    message = Signal(str, int)
    progress_changed = Signal(str)
    command_finished = Signal(str, object)

    def __init__(self, engine: EngineControl, selection: Callable[[], list[ServiceSnapshot]],
                 all_snapshots: Callable[[], Mapping[str, ServiceSnapshot]],
                 alerts: Callable[[], list[AlertView]], parent: QWidget | None = None,
                 confirm: Confirm | None = None, now: Callable[[], float] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("service_actions")
        self.engine = engine
        self._selection = selection
        self._all = all_snapshots
        self._alerts = alerts
        self.confirm: Confirm = confirm or default_confirm(parent)
        self._now = now or time.time
        self.tasks: set[asyncio.Future[None]] = set()
        self.actions: dict[str, QAction] = {}
        self.read_only: Callable[[Sequence[str]], list[str]] = lambda _ids: []
        self._tips: dict[str, str] = {}
        owner = parent if parent is not None else self

        def make(name: str, text: str, tip: str, slot: Callable[[], None], checkable: bool = False) -> QAction:
            action = make_action(owner, name, text, tip, slot, checkable)
            self.actions[name] = action
            self._tips[name] = action.toolTip()  # with its shortcut
            return action

        make("action_force_open", "Force open…", "Force the breaker open: block calls to the selected devices",
             self.force_open)
        make("action_force_close", "Force closed", "Force the breaker closed: let every call through",
             self.force_close)
        make("action_reset_breaker", "Reset breaker", "Reset the breaker to closed and clear forced states",
             self.reset_breaker)
        make("action_restart", "Restart…", "Restart the selected devices with their restart action",
             self.restart)
        make("action_pause", "Pause", "Pause or resume health checks of the selected devices",
             self.toggle_pause, checkable=True)
        make("action_maintenance", "Maintenance",
             "Put the selected devices in (or out of) maintenance: alarms suppressed, still visible",
             self.toggle_maintenance, checkable=True)
        make("action_maintenance_group", "Maintenance (group)",
             "Put every device of the selected devices' groups in (or out of) maintenance",
             self.toggle_group_maintenance)
        make("action_acknowledge", "Acknowledge",
             "Acknowledge unacknowledged alerts of the selected devices (all, if none is selected)",
             self.acknowledge)
        self.refresh_state()

    # ---- state
    def selected(self) -> list[ServiceSnapshot]:
        return self._selection()

    def refresh_state(self) -> None:
        """Enable per selection; pause/maintenance show whether all selected are in that state."""
        sel = self.selected()
        has = bool(sel)
        viewers = self.read_only([s.id for s in sel]) if has else []
        why = (f" — read-only: {', '.join(viewers)} was attached with a viewer token" if viewers else "")
        for name in ("action_force_open", "action_force_close", "action_reset_breaker", "action_restart",
                     "action_pause", "action_maintenance", "action_maintenance_group", "action_acknowledge"):
            action = self.actions[name]
            # Acknowledge needs no selection: with none it acknowledges everything.
            action.setEnabled((has or name == "action_acknowledge") and not viewers)
            tip = self._tips[name] + why
            if action.toolTip() != tip:
                action.setToolTip(tip)
                action.setStatusTip(tip)
        all_paused = has and all(s.paused for s in sel)
        pause = self.actions["action_pause"]
        pause.setChecked(all_paused)
        pause.setText("Resume" if all_paused else "Pause")
        self.actions["action_maintenance"].setChecked(has and all(s.maintenance for s in sel))

    # ---- command plumbing
    def launch(self, name: str, command: Awaitable[CommandResult], progress: str = "") -> asyncio.Future[None]:
        """Run `command` as a task; report its result (or its exception) when it returns."""
        task = asyncio.ensure_future(self._run(name, command, progress))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _run(self, name: str, command: Awaitable[CommandResult], progress: str) -> None:
        if progress:
            self.progress_changed.emit(progress)
        try:
            result = await command
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the engine raised instead of returning a result: still tell the operator
            log.exception("command %s failed", name)
            result = CommandResult(False, f"{name.replace('_', ' ')} failed: {exc}")
        finally:
            if progress:
                self.progress_changed.emit("")
        if not isinstance(result, CommandResult):
            result = CommandResult(True, f"{name.replace('_', ' ')} done")
        self.message.emit(result.message if result.ok else f"✖ {result.message}", 5000 if result.ok else 10000)
        self.command_finished.emit(name, result)
        self.refresh_state()

    async def wait_idle(self) -> None:
        """Wait until every command task launched so far has finished."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def _ids(self, snaps: Sequence[ServiceSnapshot]) -> list[str]:
        return [s.id for s in snaps]

    # ---- actions
    def force_open(self) -> None:
        sel = self.selected()
        if not sel or not self.confirm("Force breaker open", force_open_question(sel)):
            return
        self.launch("force_open", self.engine.force_open(self._ids(sel), ORIGIN))

    def force_close(self) -> None:
        sel = self.selected()
        if sel:
            self.launch("force_close", self.engine.force_close(self._ids(sel), ORIGIN))

    def reset_breaker(self) -> None:
        sel = self.selected()
        if sel:
            self.launch("reset", self.engine.reset(self._ids(sel), ORIGIN))

    def restart(self) -> None:
        sel = self.selected()
        if not sel or not self.confirm("Restart", restart_question(sel)):
            return
        self.launch("restart", self.engine.restart(self._ids(sel), ORIGIN),
                    progress=f"restarting {name_list(sel)}…")

    def toggle_pause(self) -> None:
        sel = self.selected()
        if not sel:
            self.refresh_state()
            return
        if all(s.paused for s in sel):
            self.launch("resume", self.engine.resume(self._ids(sel), ORIGIN))
        else:
            self.launch("pause", self.engine.pause(self._ids(sel), ORIGIN))
        self.refresh_state()  # the checked state follows the snapshots, not the click

    def toggle_maintenance(self) -> None:
        sel = self.selected()
        if not sel:
            self.refresh_state()
            return
        on = not all(s.maintenance for s in sel)
        self.launch("maintenance", self.engine.maintenance(self._ids(sel), on, ORIGIN))
        self.refresh_state()

    def toggle_group_maintenance(self) -> None:
        """Maintenance for whole groups (the engine takes group names as targets, so devices added to
        the group later are covered too). On unless every member already is in maintenance."""
        sel = self.selected()
        if not sel:
            return
        groups = sorted({s.group for s in sel})
        members = [s for s in self._all().values() if s.group in groups]
        on = not all(s.maintenance for s in members)
        self.launch("maintenance", self.engine.maintenance(groups, on, ORIGIN))

    def acknowledge(self, alert_ids: Sequence[str] | None = None) -> None:
        """Acknowledge `alert_ids`, or the selected devices' unacknowledged alerts (all if none match)."""
        if not alert_ids:
            pending = unacknowledged(self._alerts(), self._now())
            ids = {s.id for s in self.selected()}
            groups = {s.group for s in self.selected()}
            mine = [a for a in pending if a.service in ids or (not a.service and a.group in groups)]
            alert_ids = [a.id for a in (mine or pending)]
        if not alert_ids:
            self.message.emit("No unacknowledged alerts", 3000)
            return
        self.launch("acknowledge", self.engine.acknowledge(list(alert_ids), ORIGIN))

    def silence(self, alert_ids: Sequence[str], seconds: float) -> None:
        if alert_ids:
            self.launch("silence", self.engine.silence(list(alert_ids), seconds, ORIGIN))
