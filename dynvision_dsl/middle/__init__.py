"""The middle: the connection graph, shared by check, schedule and drawings."""
