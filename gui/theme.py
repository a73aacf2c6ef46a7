"""Qt side of the visual vocabulary: QColor lookups, the QPalette and the style sheet per theme.

`gui/palette.py` owns the colours and the state→(role, shape, word) mapping and stays Qt-free; this
module only turns a `palette.Theme` into what Qt needs. Selection uses a neutral tint (never the
info blue or an alarm hue), so a selected healthy row does not look like a state.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from gui import palette

DEFAULT_THEME = "light"


def theme_named(name: str | None) -> palette.Theme:
    """The theme called `name`, or the default one for unknown/empty names."""
    return palette.THEMES.get((name or "").lower(), palette.THEMES[DEFAULT_THEME])


def qcolor(theme: palette.Theme, role: str) -> QColor:
    """The QColor of a palette role (normal | critical | warning | suppressed | info)."""
    return QColor(palette.colour(theme, role))


def selection_colour(theme: palette.Theme) -> str:
    """A neutral selection tint: mixes text into the surface; no hue that could mean a state."""
    surface = QColor(theme.surface)
    text = QColor(theme.text)
    share = 0.18 if theme.name == "light" else 0.22
    mixed = QColor(
        round(surface.red() * (1 - share) + text.red() * share),
        round(surface.green() * (1 - share) + text.green() * share),
        round(surface.blue() * (1 - share) + text.blue() * share),
    )
    return mixed.name()


def qpalette(theme: palette.Theme) -> QPalette:
    """A QPalette matching the theme, for widgets the style sheet does not reach."""
    pal = QPalette()
    window, surface, text, muted = (QColor(theme.window), QColor(theme.surface), QColor(theme.text),
                                    QColor(theme.muted))
    pal.setColor(QPalette.ColorRole.Window, window)
    pal.setColor(QPalette.ColorRole.WindowText, text)
    pal.setColor(QPalette.ColorRole.Base, surface)
    pal.setColor(QPalette.ColorRole.AlternateBase, window)
    pal.setColor(QPalette.ColorRole.Text, text)
    pal.setColor(QPalette.ColorRole.Button, window)
    pal.setColor(QPalette.ColorRole.ButtonText, text)
    pal.setColor(QPalette.ColorRole.ToolTipBase, surface)
    pal.setColor(QPalette.ColorRole.ToolTipText, text)
    pal.setColor(QPalette.ColorRole.PlaceholderText, muted)
    pal.setColor(QPalette.ColorRole.Highlight, QColor(selection_colour(theme)))
    pal.setColor(QPalette.ColorRole.HighlightedText, text)
    pal.setColor(QPalette.ColorRole.Mid, QColor(theme.grid))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, muted)
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, muted)
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, muted)
    return pal


def stylesheet(theme: palette.Theme) -> str:
    """The application style sheet for `theme`.

    The alert banner is styled through its dynamic `severity` property (critical | warning | info)
    so the hue follows the worst unacknowledged alert.
    """
    t = theme
    sel = selection_colour(t)
    return f"""
QMainWindow, QWidget#central, QStackedWidget, QSplitter {{ background: {t.window}; color: {t.text}; }}
QToolBar {{ background: {t.window}; border: none; border-bottom: 1px solid {t.grid}; spacing: 4px; }}
QToolBar QToolButton {{ color: {t.text}; padding: 3px 8px; border: 1px solid transparent; border-radius: 3px; }}
QToolBar QToolButton:hover {{ border-color: {t.grid}; background: {t.surface}; }}
QToolBar QToolButton:checked {{ border-color: {t.suppressed}; color: {t.suppressed}; }}
QToolBar QToolButton:disabled {{ color: {t.muted}; }}
QMenuBar {{ background: {t.window}; color: {t.text}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {sel}; color: {t.text}; }}
QMenu {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.grid}; }}
QMenu::item:disabled {{ color: {t.muted}; }}
QStatusBar {{ background: {t.window}; color: {t.text}; border-top: 1px solid {t.grid}; }}
QStatusBar QLabel {{ color: {t.text}; }}
QLineEdit {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.grid}; border-radius: 3px;
             padding: 2px 6px; selection-background-color: {sel}; selection-color: {t.text}; }}
QLineEdit:focus {{ border-color: {t.muted}; }}
QTableView {{ background: {t.surface}; alternate-background-color: {t.window}; color: {t.text};
              gridline-color: {t.grid}; border: 1px solid {t.grid};
              selection-background-color: {sel}; }}
QHeaderView::section {{ background: {t.window}; color: {t.muted}; border: none;
                        border-right: 1px solid {t.grid}; border-bottom: 1px solid {t.grid};
                        padding: 3px 6px; font-weight: 600; }}
QTableCornerButton::section {{ background: {t.window}; border: none; }}
QSplitter::handle {{ background: {t.grid}; }}
QLabel {{ color: {t.text}; }}
QLabel[muted="true"] {{ color: {t.muted}; }}
QLabel[heading="true"] {{ color: {t.muted}; font-weight: 600; }}
QFrame#detail_panel {{ background: {t.surface}; border: 1px solid {t.grid}; }}
QFrame#detail_panel QLabel[field="true"] {{ color: {t.muted}; }}
QFrame#alert_banner {{ border: none; border-left: 8px solid {t.critical}; background: {t.surface}; }}
QFrame#alert_banner[severity="critical"] {{ border-left-color: {t.critical}; }}
QFrame#alert_banner[severity="warning"] {{ border-left-color: {t.warning}; }}
QFrame#alert_banner[severity="info"] {{ border-left-color: {t.info}; }}
QFrame#alert_banner QLabel#alert_banner_counts {{ font-weight: 700; }}
QFrame#config_notice {{ border: none; border-left: 8px solid {t.critical}; background: {t.surface}; }}
QFrame#config_notice QLabel#config_notice_text {{ color: {t.critical}; }}
QFrame#alert_banner QLabel#alert_banner_counts[severity="critical"] {{ color: {t.critical}; }}
QFrame#alert_banner QLabel#alert_banner_counts[severity="warning"] {{ color: {t.warning}; }}
QFrame#alert_banner QLabel#alert_banner_counts[severity="info"] {{ color: {t.info}; }}
QPushButton {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.grid}; border-radius: 3px;
               padding: 3px 10px; }}
QPushButton:hover {{ border-color: {t.muted}; }}
QPushButton:focus {{ border-color: {t.text}; }}
QComboBox {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.grid}; padding: 2px 6px; }}
QToolTip {{ background: {t.surface}; color: {t.text}; border: 1px solid {t.grid}; }}
"""


def apply_theme(app: QApplication, theme: palette.Theme) -> None:
    """Apply `theme` to the whole application (palette + style sheet)."""
    app.setPalette(qpalette(theme))
    sheet = stylesheet(theme)
    # Setting the same sheet again still repolishes every shown widget (~50 ms with one window up),
    # and every new MainWindow applies its theme: only a different sheet is worth that.
    if app.styleSheet() != sheet:
        app.setStyleSheet(sheet)
