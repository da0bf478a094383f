"""The one atomic writer and run-folder lock: files appear whole or not at all,
nothing but a regular file is ever replaced, and one command at a time writes a folder.

    check_target(path, overwrite)            # before any work: refuse a clash, a non-file, no write access
    with atomic_targets([a, b]) as (ta, tb):  # write the temps; both renamed on success, removed on failure
        ...
    with RunFolder(out, "dynv run", ("responses.pt",)):  # create, lock, sweep stale temps, write-test
        ...

Temporary files are `.NAME.XXXXXXXX.tmp` beside their target (unique per writer). They are
removed on every exit path Python sees; `signals_as_exceptions` makes SIGTERM one of them
(SIGINT already raises KeyboardInterrupt). A SIGKILL leaves them behind: the next command that
holds the folder's lock removes the `.NAME.*.tmp` of its own outputs.
"""
from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator

LOCK_NAME = ".dynv.lock"
STAGING_PREFIX = ".staging-"  # run folders under construction inside a run folder (dynv train --force)


class OutputError(Exception):
    """An output path the user can fix (not a regular file, not writable, in use); the CLI prints
    it as one `dynv: ...` line and exits 1."""


class OutputExists(OutputError, FileExistsError):
    """The target exists and replacing it was not asked for."""


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so that temporary files are cleaned up on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


@contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` (exit status 143) instead of killing the process
    outright, so every `with` block unwinds; the previous handler comes back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# ------------------------------------------------------------------ checks
def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_replaceable(path: str | Path, overwrite: bool, flag: str = "--force (overwrite=True)") -> None:
    """Refuse a target that exists and is not a regular file (a directory, a device, a fifo,
    a symbolic link: `--force` never replaces those), or that exists when `overwrite` is off."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        return  # a parent is a file: check_writable names it
    if not stat.S_ISREG(mode):
        raise OutputError(f"{path} is {_kind(mode)}, not a regular file; --force replaces only regular files: "
                          f"choose another path")
    if not overwrite:
        raise OutputExists(f"{path} exists; pass {flag} to replace it")


def _existing_ancestor(folder: Path) -> Path:
    """The folder itself or its nearest ancestor that exists, as the user wrote it (`folder` may be missing)."""
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            return path
    return Path(os.path.abspath(folder)).parent  # pragma: no cover - "." or "/" always exists


def _write_test(folder: Path) -> None:
    """Create and delete a file in `folder`: the only honest answer (os.access says yes to root on a
    read-only mount's neighbours, and nothing about ACLs or full disks)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".dynv-write-test.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)


def check_writable(folder: str | Path, label: str | None = None) -> None:
    """Fail now, before any work, if files cannot be written into `folder` (created when missing):
    a path component that is a file, or a folder (or its nearest existing ancestor) without write
    access. `label` names the folder in messages (default: `the output folder FOLDER`)."""
    folder = Path(folder)
    label = label or f"the output folder {folder}"
    base = _existing_ancestor(folder)
    if not base.is_dir():
        here = "is" if base == folder else f"is under {base}, which is"
        raise OutputError(f"{label} {here} a file, not a folder; choose another path")
    try:
        _write_test(base)
    except OSError as exc:
        where = "" if base == folder else f" (it would be created in {base})"
        raise OutputError(f"cannot write to {label}{where}: {exc.strerror or exc}; choose another path or "
                          f"make it writable") from None


def check_target(path: str | Path, overwrite: bool, flag: str = "--force") -> None:
    """Everything that would stop writing `path` later, checked now: see check_replaceable and check_writable."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    check_writable(parent, f"the folder {parent} of {path}")
    check_replaceable(path, overwrite, flag)


# ------------------------------------------------------------------ writing
def file_mode(path: Path) -> int:
    """The permissions a new file would get from open() (mkstemp's are owner-only)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _new_temp(path: Path) -> str:
    """An empty, uniquely named `.NAME.XXXXXXXX.tmp` beside `path` (its folder created when missing)."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose another path") from None
    os.close(fd)
    return tmp


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


@contextmanager
def atomic_targets(paths: Iterable[str | Path], overwrite: bool = False) -> Iterator[list[str]]:
    """Yield one temporary path beside each of `paths`; on success each replaces its target (with
    normal permissions; together, after the body), on any failure all are removed and no target
    is touched. Refuses a target that is not a regular file, or exists unless `overwrite`."""
    paths = [Path(p) for p in paths]
    for path in paths:
        check_replaceable(path, overwrite)
    temps: list[str] = []
    try:
        for path in paths:
            temps.append(_new_temp(path))
        yield list(temps)
        for path, tmp in zip(paths, temps):
            check_replaceable(path, True)  # still a regular file (or absent) right before the rename
            os.chmod(tmp, file_mode(path))
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps:
            _discard(tmp)
        raise


@contextmanager
def atomic_target(path: str | Path, overwrite: bool = False) -> Iterator[str]:
    """One target of atomic_targets: a temporary path that replaces `path` on success."""
    with atomic_targets([path], overwrite) as (tmp,):
        yield tmp


@contextmanager
def atomic_open(path: str | Path, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """A binary file that replaces `path` (flushed and fsync'ed) on success, or vanishes on failure."""
    with atomic_target(path, overwrite) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: str | Path, text: str, overwrite: bool = False) -> None:
    """Write text via a temporary file and a rename, refusing to replace a file unless asked."""
    with atomic_target(path, overwrite) as tmp, open(tmp, "w") as fh:
        fh.write(text)


def write_atomic_bytes(path: str | Path, data: bytes, overwrite: bool = False) -> Path:
    """`write_atomic` for bytes (images, archives); returns the path written."""
    with atomic_open(path, overwrite) as fh:
        fh.write(data)
    return Path(path)


# ------------------------------------------------------------------ the run-folder lock
def _stale_temp(name: str, outputs: Iterable[str]) -> bool:
    """Whether `name` is a temporary of one of `outputs` (`.NAME.XXXX.tmp`, as atomic_targets makes)."""
    return any(re.fullmatch(rf"\.{re.escape(out)}\.[A-Za-z0-9_]+\.tmp", name) for out in outputs)


def sweep_stale(folder: Path, outputs: Iterable[str]) -> list[str]:
    """Remove what a killed command left in `folder`: temporaries of `outputs` and staging folders.
    Call only while holding the folder's lock (then nobody else is writing them)."""
    outputs, removed = list(outputs), []
    for entry in os.scandir(folder):
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        elif _stale_temp(entry.name, outputs) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
        else:
            continue
        removed.append(entry.name)
    return removed


def user_entries(folder: Path) -> list[Path]:
    """What is in `folder` besides the lock and staging folders (what a command would find or replace)."""
    return [p for p in folder.iterdir() if p.name != LOCK_NAME and not p.name.startswith(STAGING_PREFIX)]


def command_line(argv: list[str] | None = None) -> str:
    """How the command was typed: `dynv` and `argv` (main's arguments), else this process's sys.argv."""
    if argv is not None:
        return shlex.join(["dynv", *argv])
    args = list(sys.argv)
    if args and args[0].endswith(("dynv", "__main__.py")):
        args[0] = "dynv"
    return shlex.join(args)


@dataclass
class RunFolder:
    """A run folder held by one command: created when missing, write-tested, locked by a file
    `.dynv.lock` (holding the pid and command, under an fcntl lock the kernel drops when the
    process dies, so a lock left by a killed process is taken over with a note), and swept of the
    stale temporaries of `outputs`. On a failure, folders it created are removed again if empty."""

    folder: Path
    command: str
    outputs: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    _fd: int | None = field(default=None, repr=False)
    _created: list[Path] = field(default_factory=list, repr=False)

    def __enter__(self) -> "RunFolder":
        self.acquire()
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.release(failed=kind is not None)

    def acquire(self) -> "RunFolder":
        self.folder = Path(self.folder)
        check_writable(self.folder)
        self._make_folder()
        try:
            self._lock()
            self.notes += [f"note: removed {name} left in {self.folder} by an interrupted run"
                           for name in sweep_stale(self.folder, self.outputs)]
        except BaseException:
            self.release(failed=True)
            raise
        return self

    def _make_folder(self) -> None:
        missing, here = [], Path(os.path.abspath(self.folder))
        while not here.exists():
            missing.append(here)
            here = here.parent
        self.folder.mkdir(parents=True, exist_ok=True)
        self._created = missing  # innermost first

    def _lock(self) -> None:
        import fcntl

        path = self.folder / LOCK_NAME
        for _ in range(20):  # the holder may unlink the file between our open and our lock
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _holder(fd)
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise OutputError(f"{self.folder} is in use by {_describe_holder(holder)}; wait for it to "
                                  f"finish, or choose another --out") from None
            if _same_file(fd, path):
                break
            os.close(fd)
        else:  # pragma: no cover - needs 20 lost races in a row
            raise OutputError(f"could not lock {self.folder}; try again")
        old = _read_fd(fd)
        if old:
            self.notes.append(f"note: took over the lock of {self.folder} from {_describe_holder(old)}, "
                              f"which is no longer running")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        self._fd = fd

    def release(self, failed: bool = False) -> None:
        """Drop the lock (and the lock file); after a failure also the folders acquire() created, if empty."""
        if self._fd is not None:
            try:
                os.unlink(self.folder / LOCK_NAME)  # while still locked: nobody else holds it
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
        if failed:
            for folder in self._created:
                try:
                    folder.rmdir()
                except OSError:
                    break
        self._created = []


def _holder(fd: int) -> str:
    """Who holds the lock: its `pid command` line, waited for briefly (the holder writes it just
    after taking the lock), else 'another process'."""
    import time

    for _ in range(40):
        text = _read_fd(fd)
        if text:
            return text
        time.sleep(0.025)
    return "another process"


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _describe_holder(text: str) -> str:
    pid, _, command = text.partition(" ")
    return f"pid {pid} ({command})" if pid.isdigit() and command else f"pid {pid}" if pid.isdigit() else text
