"""Regenerate the table of diagnostic codes in the language reference from the catalogue:
`python -m dynvision_dsl.tooling.codes docs/LANGUAGE.md` (tests/test_diagnostics.py checks it is current)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..diagnostics.catalogue import update_reference


def main(argv: list[str]) -> int:
    for name in argv or ["docs/LANGUAGE.md"]:
        path = Path(name)
        path.write_text(update_reference(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
