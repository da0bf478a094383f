"""`dynv fmt`: one canonical layout for `.dyn` specs.

Each statement on its own line, two spaces per block level, single spaces
around operators (none inside brackets or around a keyword argument's `=`),
`=` aligned in runs of params and time settings, `:` aligned in runs of
connections, `*` aligned in runs of ODEs with a time constant, trailing
comments aligned per run, at most one blank line in a row. Only whitespace
changes: the formatted text must parse to the same syntax tree (checked on
every call), and comments stay where they were.
"""
from __future__ import annotations

import bisect
import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache

from lark import Lark, Token, Tree

from ..diagnostics import Diagnostic, DynError, Span
from ..frontend.parse import GRAMMAR, parse

INDENT = "  "
_BLOCKS = ("area", "dynamics", "time", "top_if", "area_if", "for_loop")
_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"?|#[^\n]*')
_TIGHT_BEFORE = (",", ")", "]", ".")
_TIGHT_AFTER = ("(", "[", ".")
_TIGHT_EQUALS = ("kwarg", "tparam")  # `stride=2`, `leaky(tau=5 ms)`
_IGNORED_FIELDS = ("span", "source", "file", "text", "port_span", "name_span", "_graph", "_graph_key", "_into",
                   "_into_key")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The language's grammar, keeping every token (brackets, commas) in the tree."""
    return Lark(GRAMMAR.read_text(), parser="lalr", propagate_positions=True, keep_all_tokens=True)


@dataclass(frozen=True)
class _Comment:
    pos: int
    line: int
    text: str
    anchor: int | None  # start of the last token before it on its line; None: the comment has the line


@dataclass
class _Line:
    """One output line: code (possibly aligned) or a standalone comment."""

    depth: int
    text: str
    first: int = -1  # source position of the first and last token (-1 for a comment)
    last: int = -1
    src: tuple[int, int] = (0, 0)  # source lines it came from
    kind: str = ""  # alignment group: param, time, conn, ode
    left: str = ""
    right: str = ""
    comment: str | None = None

    @property
    def is_code(self) -> bool:
        return self.first >= 0

    @property
    def opens(self) -> bool:
        return self.is_code and self.text.endswith("{")

    @property
    def closes(self) -> bool:
        return self.is_code and self.text.startswith("}")


def format_source(source: str, file: str = "<string>") -> str:
    """The canonical layout of `source`; raises DynError on a syntax error."""
    before = parse(source, file)  # the compiler's own syntax errors, with its messages
    text = _Formatter(source).run()
    after = parse(text, file)
    if structure(before.decls) != structure(after.decls):  # a formatter bug must never reach a file
        raise DynError([Diagnostic("error", "the formatter would change the meaning of this spec; "
                                   "please report it (the file was left as it was)", Span(file, 1, 1, 1, 2),
                                   None, "fmt-internal")], source)
    return text


def structure(value):
    """`value` as nested tuples without spans, sources and source text: what two
    versions of a spec must share when only their layout differs."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,) + tuple(
            (f.name, structure(getattr(value, f.name))) for f in dataclasses.fields(value)
            if f.name not in _IGNORED_FIELDS)
    if isinstance(value, dict):
        return tuple((structure(k), structure(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(structure(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted(structure(v) for v in value))
    return value


# ------------------------------------------------------------ tokens to text
def _tokens(node, parent: str = "") -> list[tuple[Token, str]]:
    """The tokens of a subtree in source order, each with the rule it belongs to."""
    if isinstance(node, Token):
        return [(node, parent)]
    if node.data == "gname" and len(node.children) > 1:  # an interpolated name is one word: L{i + 1}_out
        return [(_interpolated(node), parent)]
    out = []
    for child in node.children:
        if child is not None:
            out.extend(_tokens(child, node.data))
    return out


def _interpolated(node: Tree) -> Token:
    """An interpolated name as one token: its pieces without spaces, the expressions laid out."""
    pieces = [str(c) if isinstance(c, Token) else "{" + _join(_tokens(c.children[1], "interp")) + "}"
              for c in node.children if c is not None]
    first = next(c for c in node.children if isinstance(c, Token))
    return Token.new_borrow_pos("NAME", "".join(pieces), first)


def _tight(a: tuple[Token, str], b: tuple[Token, str]) -> bool:
    """Whether tokens a and b are written without a space between them."""
    (ta, pa), (tb, pb) = a, b
    if str(tb) in _TIGHT_BEFORE or str(ta) in _TIGHT_AFTER or ".." in (str(ta), str(tb)):  # 1..n
        return True
    if str(tb) == "(" and ta.type in ("NAME", "TRAINABLE"):  # f(x), trainable(min=dt)
        return True
    if pa == "unary_op" and ta.type == "ADD_OP":  # -r
        return True
    return str(ta) == "=" and pa in _TIGHT_EQUALS or str(tb) == "=" and pb in _TIGHT_EQUALS


def _text(token: Token) -> str:
    return re.sub(r"\s+", "", str(token)) if token.type == "DERIV" else str(token)


def _join(toks: list[tuple[Token, str]]) -> str:
    out = []
    for i, tok in enumerate(toks):
        if i and not _tight(toks[i - 1], tok):
            out.append(" ")
        out.append(_text(tok[0]))
    return "".join(out)


def _split(tree: Tree, toks: list[tuple[Token, str]]) -> tuple[str, str, str]:
    """(kind, left, right) of a statement that aligns with its neighbours, or ('', '', '')."""
    at = {"param": "=", "time_item": "=", "connection": ":"}.get(tree.data)
    if tree.data == "ode" and isinstance(tree.children[0], Tree):
        at = "*"
    if at is None:
        return "", "", ""
    k = next(i for i, (t, rule) in enumerate(toks) if str(t) == at and (at != "*" or rule == "ode"))  # not in (2 * tau)
    kind = {"time_item": "time", "connection": "conn"}.get(tree.data, tree.data)
    return kind, _join(toks[:k]), _join(toks[k:])


# ------------------------------------------------------------------ layout
class _Formatter:
    """Lays out one parsed spec: statements to lines, then comments, blank lines and alignment."""

    def __init__(self, source: str):
        self.source = source
        self.tree = _parser().parse(source)
        starts = sorted(t.start_pos for t, _ in _tokens(self.tree))
        self.comments = _comments(source, starts)
        self.next_comment = 0
        self.lines: list[_Line] = []

    def run(self) -> str:
        for item in self.tree.children:
            self._item(item, 0)
        self._flush(len(self.source) + 1, 0)
        return _render(_with_blank_lines(self.lines))

    # statements
    def _item(self, tree: Tree, depth: int) -> None:
        children = [c for c in tree.children if c is not None]
        if children and isinstance(children[-1], Tree) and children[-1].data == "body":  # area, dynamics
            children = children[:-1] + [c for c in children[-1].children if c is not None]
        if tree.data in _BLOCKS and any(isinstance(c, Token) and str(c) == "{" for c in children):
            self._block(children, depth, [])
        else:
            toks = _tokens(tree)
            kind, left, right = _split(tree, toks)
            self._code(toks, depth, kind, left, right)

    def _block(self, children: list, depth: int, prefix: list[tuple[Token, str]]) -> None:
        """`header {`, the statements, then `}` or `} else ...`; `prefix` is the `} else` before an else branch."""
        k = next(i for i, c in enumerate(children) if isinstance(c, Token) and str(c) == "{")
        j = max(i for i, c in enumerate(children) if isinstance(c, Token) and str(c) == "}")
        head = prefix + [tok for c in children[:k + 1] for tok in _tokens(c, "block")]
        self._code(head, depth)
        for item in children[k + 1:j]:
            self._item(item, depth + 1)
        close = [(children[j], "block")]
        if j + 1 < len(children):  # top_else / area_else
            branch = [c for c in children[j + 1].children if c is not None]
            prefix = close + [(branch[0], "block")]
            if isinstance(branch[1], Tree):  # else if
                self._block([c for c in branch[1].children if c is not None], depth, prefix)
            else:
                self._block(branch[1:], depth, prefix)
        else:
            self._code(close, depth)

    # lines and comments
    def _code(self, toks, depth: int, kind: str = "", left: str = "", right: str = "") -> None:
        first, last = toks[0][0], toks[-1][0]
        line = _Line(depth, _join(toks), first.start_pos, last.start_pos, (first.line, last.end_line), kind,
                     left, right)
        self._flush(line.last, depth + 1 if line.closes else depth)
        self.lines.append(line)
        if self.next_comment < len(self.comments) and self.comments[self.next_comment].anchor == line.last:
            line.comment = self.comments[self.next_comment].text
            self.next_comment += 1

    def _flush(self, before: int, depth: int) -> None:
        """Emit, as lines of their own, the comments that come before source position `before`."""
        while self.next_comment < len(self.comments) and self.comments[self.next_comment].pos < before:
            c = self.comments[self.next_comment]
            self.lines.append(_Line(depth, c.text, src=(c.line, c.line)))
            self.next_comment += 1


def _comments(source: str, token_starts: list[int]) -> list[_Comment]:
    """Every comment of `source` (outside strings), with the token it trails, if any."""
    out = []
    for m in _COMMENT_OR_STRING.finditer(source):
        if not m.group().startswith("#"):
            continue
        line = source.count("\n", 0, m.start()) + 1
        line_start = source.rfind("\n", 0, m.start()) + 1
        i = bisect.bisect_left(token_starts, m.start())
        anchor = token_starts[i - 1] if i and token_starts[i - 1] >= line_start else None
        out.append(_Comment(m.start(), line, m.group().rstrip(), anchor))
    return out


def _with_blank_lines(lines: list[_Line]) -> list[_Line | None]:
    """Keep one blank line where the source had one or more (None marks it), never just inside braces."""
    out: list[_Line | None] = []
    for prev, line in zip([None] + lines, lines):
        if prev is not None and line.src[0] > prev.src[1] + 1 and not prev.opens and not line.closes:
            out.append(None)
        out.append(line)
    return out


def _runs(lines: list[_Line | None]) -> list[list[_Line]]:
    """Maximal stretches of plain code lines at one depth (blank lines, comments and braces end them)."""
    runs, cur = [], []
    for line in lines:
        plain = line is not None and line.is_code and not line.opens and not line.closes
        if plain and cur and cur[-1].depth == line.depth:
            cur.append(line)
            continue
        if cur:
            runs.append(cur)
        cur = [line] if plain else []
    if cur:
        runs.append(cur)
    return runs


def _align(run: list[_Line]) -> None:
    """Pad the left parts of neighbouring lines of one kind so that their separators line up."""
    i = 0
    while i < len(run):
        j = i
        while j < len(run) and run[j].kind and run[j].kind == run[i].kind:
            j += 1
        if j > i:
            width = max(len(line.left) for line in run[i:j])
            for line in run[i:j]:
                line.text = f"{line.left.ljust(width)} {line.right}"
        i = max(j, i + 1)


def _render(lines: list[_Line | None]) -> str:
    for run in _runs(lines):
        _align(run)
        commented = [len(line.text) for line in run if line.comment]
        col = max(commented, default=0) + 2
        for line in run:
            if line.comment:
                line.text = line.text.ljust(col) + line.comment
                line.comment = None
    out = []
    for line in lines:
        if line is None:
            out.append("")
            continue
        text = line.text + (f"  {line.comment}" if line.comment else "")
        out.append(INDENT * line.depth + text)
    return "\n".join(out).rstrip("\n") + "\n" if out else ""
