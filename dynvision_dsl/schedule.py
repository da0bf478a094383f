"""Compatibility: the schedule lives in `middle/schedule.py`, its presence rules in
`middle/silence.py`; old imports keep working."""
from __future__ import annotations

from .middle.schedule import (Read, Schedule, StateKey, StepKey, _next_change, _present, _warnings, area_step_presence,
                              build_schedule, evaluation_order, integrate_presence, presence, recorded,
                              variables_presence)

__all__ = ["Read", "Schedule", "StateKey", "StepKey", "_next_change", "_present", "_warnings", "area_step_presence",
           "build_schedule", "evaluation_order", "integrate_presence", "presence", "recorded", "variables_presence"]
