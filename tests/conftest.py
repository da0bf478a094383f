"""Shared test helpers: where the optional ../shared folder is, and small specs."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SPECS = sorted((ROOT / "specs").glob("*.dyn"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test where the folder is absent (a user's clone)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (it ships beside the repository, not inside it)")
    return path


def shared_examples() -> list[Path]:
    """The shared contract: examples/*.dyn, and examples/second_edition/*.dyn (LANGUAGE.md §9)."""
    folder = SHARED / "examples"
    return sorted(folder.glob("*.dyn")) + sorted((folder / "second_edition").glob("*.dyn")) if folder.exists() else []
