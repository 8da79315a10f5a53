"""Figures the chapters show: functions returning matplotlib Figures, one module per chapter."""
