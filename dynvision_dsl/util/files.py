"""The one atomic writer: files appear whole or not at all, and nothing is replaced unless asked."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def file_mode(path: Path) -> int:
    """The permissions a new file would get from open() (mkstemp's are owner-only)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_target(path: str | Path, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it replaces `path` (with
    normal permissions), on failure it is removed. Refuses to replace unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force (overwrite=True) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: str | Path, text: str, overwrite: bool = False) -> None:
    """Write text via a temporary file and a rename, refusing to replace a file unless asked."""
    with atomic_target(path, overwrite) as tmp, open(tmp, "w") as fh:
        fh.write(text)


def write_atomic_bytes(path: str | Path, data: bytes, overwrite: bool = False) -> None:
    """`write_atomic` for bytes (images, archives)."""
    with atomic_target(path, overwrite) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
