"""Reading a `.dyn` spec as text: the one place that turns a path into source, so the CLI
and the API (`compile(Path)`) answer a missing, binary or odd file with the same error."""
from __future__ import annotations

import difflib
import stat
from pathlib import Path

from ..diagnostics import Diagnostic, DynError, Span

BOM = "\ufeff"
MAX_SPEC_BYTES = 16 * 2**20  # a spec is a page of text; anything larger is not one


def read_spec_text(path: str | Path) -> str:
    """The text of the spec at `path` (a UTF-8 BOM stripped), or a DynError naming the file and the fix."""
    p, name = Path(path), str(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _error(name, "no such file", _nearby(p)) from None
    except OSError as exc:
        raise _error(name, f"cannot read the file: {exc.strerror or exc}", "check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise _error(name, "this is a directory, not a .dyn spec", _inside(p))
    if not stat.S_ISREG(st.st_mode):
        raise _error(name, "this is not a regular file (a device, pipe or socket)", "name a .dyn text file")
    if st.st_size > MAX_SPEC_BYTES:
        raise _error(name, f"the file is {st.st_size / 2**20:.0f} MB; a spec is a small text file "
                           f"(at most {MAX_SPEC_BYTES // 2**20} MB)", "name the .dyn spec, not a data file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise _error(name, f"cannot read the file: {exc.strerror or exc}", "check the file's permissions") from None
    return decode_spec(data, name)


def decode_spec(data: bytes, name: str) -> str:
    """`data` as UTF-8 text without a BOM, or a located DynError for bytes that are not UTF-8 text."""
    if data.startswith(BOM.encode()):
        data = data[3:]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or _looks_utf16(data):
        raise _error(name, "the file is UTF-16 text; a spec must be UTF-8", "save it as UTF-8 (e.g. "
                     f"'iconv -f UTF-16 -t UTF-8 {name}')")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _undecodable(data, exc, name) from None
    return text


def strip_bom(text: str) -> str:
    """`text` without a leading UTF-8 byte-order mark (editors on Windows write one)."""
    return text[1:] if text.startswith(BOM) else text


def _undecodable(data: bytes, exc: UnicodeDecodeError, name: str) -> DynError:
    byte = data[exc.start]
    if b"\x00" in data[:4096]:
        return _error(name, f"this is a binary file, not a .dyn spec (byte 0x{byte:02x} at offset {exc.start} "
                            f"is not UTF-8 text)", "name the .dyn text file")
    line = data.count(b"\n", 0, exc.start) + 1
    start = data.rfind(b"\n", 0, exc.start) + 1
    col = len(data[start:exc.start].decode("utf-8", "replace")) + 1
    text = data.decode("utf-8", "replace")
    diag = Diagnostic("error", f"byte 0x{byte:02x} is not UTF-8 text", Span(name, line, col, line, col + 1),
                      "save the file as UTF-8 (a spec is plain text; this looks like Latin-1 or another encoding)",
                      "E010")
    return DynError([diag], text)


def _looks_utf16(data: bytes) -> bool:
    """ASCII saved as UTF-16 without a BOM: a NUL after (or before) nearly every letter."""
    head = data[:512]
    if len(head) < 8:
        return False
    even, odd = head[0::2], head[1::2]
    return any(a.count(0) >= 0.9 * len(a) and b.count(0) <= 0.1 * len(b) for a, b in ((even, odd), (odd, even)))


def _error(name: str, message: str, hint: str | None) -> DynError:
    return DynError([Diagnostic("error", message, Span(name, 0, 0, 0, 0), hint, "E010")])


def _nearby(p: Path) -> str:
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        return f"the folder {folder} does not exist either; check the path"
    specs = sorted(q.name for q in folder.glob("*.dyn"))
    guess = difflib.get_close_matches(p.name, specs, n=1, cutoff=0.8)
    if guess:
        return f"did you mean {folder / guess[0]}?"
    where = "this folder" if str(folder) == "." else str(folder)
    return f"specs in {where}: " + ", ".join(specs[:5]) if specs else f"there is no .dyn file in {where}"


def _inside(p: Path) -> str:
    specs = sorted(p.glob("*.dyn"))[:3]
    if specs:
        return "name a spec inside it, e.g. " + ", ".join(str(s) for s in specs)
    return "name a .dyn file"
