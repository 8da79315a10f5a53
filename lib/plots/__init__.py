"""Figures the chapters show: functions returning matplotlib Figures, one module per chapter.

Importing any of them applies the book's one style (:mod:`lib.plots.style`).
"""

from lib.plots import style as _style

_style.apply()
