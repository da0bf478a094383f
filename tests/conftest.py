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


@pytest.fixture
def one_thread():
    """Tiny convolutions run many times faster on one thread than on two contended ones
    (a test module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch  # here, not at the top: the conftest of torch-free tests stays torch-free

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
