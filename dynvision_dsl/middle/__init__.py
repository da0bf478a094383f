"""The middle: the connection graph (shared by check, schedule and drawings), the one set of
silence rules (silence.py, read by the schedule and the drop_silent pass) and the schedule."""
