"""The frontend: parse a `.dyn` file and check it into the IR; imports no torch."""
