"""Stage 1: `.dyn` text to an AST that keeps source spans (Lark, LALR)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import syntax as S
from ..diagnostics import Diagnostic, DynError, Span
from ..util.source import read_spec_text, strip_bom

GRAMMAR = Path(__file__).with_name("dyn.lark")
RESERVED_UNITS = ("ms", "s")
KEYWORDS = ("model", "time", "param", "input", "readout", "area", "dynamics", "state", "port", "output", "solver", "if",
            "else", "delay", "as", "trainable", "true", "false", "and", "or", "not", "for", "in")

# How terminals read in a message: what a person types, never an internal name.
_TERMINAL_TEXT = {
    "NAME": "a name", "NAME_TAIL": "the rest of a name", "NUMBER": "a number", "SEGINT": "a number", "STRING": "a string",
    "DERIV": "a derivative like 'dr/dt'", "UNIT": "a unit ('ms' or 's')",
    "ADD_OP": "'+' or '-'", "MUL_OP": "'*' or '/'", "COMP_OP": "a comparison",
    "$END": "the end of the file",
}
# Tokens that may always continue an expression; left out of "expected" lists
# when something more telling is also expected.
_EXPR_CONTINUATIONS = {"ADD_OP", "MUL_OP", "COMP_OP", "CIRCUMFLEX", "AND", "OR", "UNIT", "LPAR", "AS", "DOT"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The grammar, started at `start` (a spec) or at `expr` (a value alone, as `--set` gives one)."""
    return Lark(GRAMMAR.read_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True,
                start=["start", "expr"], cache=True)  # lark keys the cached tables by the grammar text


def parse(source: str, file: str = "<string>") -> S.Module:
    """Parse `source`; raise DynError with a located diagnostic on a syntax error."""
    source = strip_bom(source)
    if "\x00" in source:
        raise DynError([_nul_diagnostic(source, file)], source.replace("\x00", "\u2400"))
    try:
        tree = _parser().parse(source, start="start")
    except UnexpectedInput as exc:
        raise DynError([_syntax_diagnostic(exc, source, file)], source) from None
    return S.Module(decls=tuple(_to_ast(tree, file, source)), source=source, file=file)


def _to_ast(tree: Tree, file: str, source: str):
    """The AST of a parse tree (a list of declarations, or one expression), its nesting bounded."""
    try:
        ast = _ToAst(file, source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, DynError):
            raise DynError(exc.orig_exc.diagnostics, source) from None
        raise
    too_deep = S.nesting_error(ast if isinstance(ast, (list, tuple)) else [ast])
    if too_deep is not None:
        raise DynError([too_deep], source)
    return ast


def parse_file(path: str | Path) -> S.Module:
    return parse(read_spec_text(path), str(path))


def parse_value(text: str, file: str) -> S.Expr:
    """Parse one expression on its own (a `--set` value); errors point into `text`, which is
    its own source (line 1), and never mention the declarations around a spec's values."""
    try:
        tree = _parser().parse(text, start="expr")
    except UnexpectedInput as exc:
        raise DynError([_value_diagnostic(exc, text, file)], text) from None
    return _to_ast(tree, file, text)


def _value_diagnostic(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    """A syntax error in a lone value: what was unexpected, or that it ended too soon."""
    col = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
    span = Span(file, 1, col, 1, col + 1)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        if char == '"':
            return Diagnostic("error", "a string is not closed", span, "end it with '\"'", "E002")
        return Diagnostic("error", f"unexpected character {char!r}", span, None, "E001")
    token = getattr(exc, "token", None)
    if token is None or token.type == "$END":
        return Diagnostic("error", "it ends too soon" if text.strip() else "it is empty", span, None, "E001")
    if str(token) in RESERVED_UNITS:
        return Diagnostic("error", f"'{token}' is a unit and may only follow a number, once", span, None, "E003")
    before = text[:token.start_pos].strip()
    return Diagnostic("error", f"unexpected {str(token)!r}" + (f" after {before!r}" if before else ""), span, None,
                      "E001")


def parse_expression(text: str, file: str = "<override>") -> S.Expr:
    """Parse a single expression (a `--set name=value` override's value)."""
    return parse_value(text, file)


# --------------------------------------------------------------- syntax errors
def _nul_diagnostic(source: str, file: str) -> Diagnostic:
    """A NUL character: never text a person typed, and it would end up in generated comments."""
    pos = source.index("\x00")
    line = source.count("\n", 0, pos) + 1
    col = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return Diagnostic("error", "a NUL character (\\0) is not allowed in a spec", Span(file, line, col, line, col + 1),
                      "delete it; a spec is plain UTF-8 text (NULs come from binary files or UTF-16 saves)", "E007")


def _describe(term: str) -> str:
    if term in _TERMINAL_TEXT:
        return _TERMINAL_TEXT[term]
    for t in _parser().terminals:
        if t.name == term and t.pattern.type == "str":
            return f"'{t.pattern.value}'"
    return term.lower()


def _expected_text(expected: set[str]) -> str:
    names = set(expected)
    telling = names - _EXPR_CONTINUATIONS
    if telling:
        names = telling
    words = sorted({_describe(n) for n in names}, key=lambda w: (not w.startswith("'"), w))
    if len(words) == 1:
        return words[0]
    if len(words) <= 6:
        return ", ".join(words[:-1]) + " or " + words[-1]
    return "one of " + ", ".join(words)


def _syntax_diagnostic(exc: UnexpectedInput, source: str, file: str) -> Diagnostic:
    line, col = exc.line, exc.column
    at_eof = isinstance(exc, UnexpectedToken) and exc.token.type == "$END" or isinstance(exc, UnexpectedEOF)
    if not isinstance(exc, UnexpectedCharacters):
        stop = len(source) if at_eof else exc.token.start_pos
        found = _likely_cause(_scan(source), stop, at_eof, file)
        if found is not None:
            return found
    if at_eof:
        lines = source.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        message = f"unexpected end of file: expected {_expected_text(set(exc.expected))}"
        return Diagnostic("error", message, Span(file, line, col, line, col + 1), None, "E001")
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        text = str(tok)
        span = Span(file, line, col, tok.end_line or line, tok.end_column or col + len(text))
        if text in RESERVED_UNITS:
            return Diagnostic("error", f"'{text}' is a unit and may only follow a number", span,
                              f"write a number before it, e.g. '1 {text}'", "E003")
        message = f"unexpected '{text}': expected {_expected_text(set(exc.expected))}"
        return Diagnostic("error", message, span, _hint_for(tok, exc.expected), "E001")
    assert isinstance(exc, UnexpectedCharacters)
    char = source[exc.pos_in_stream] if exc.pos_in_stream < len(source) else "?"
    span = Span(file, line, col, line, col + 1)
    if char == '"':
        return Diagnostic("error", "a string is not closed on its line", span, "end it with '\"'", "E002")
    return Diagnostic("error", f"unexpected character '{char}'", span,
                      "names use letters, digits and '_'; comments start with '#'", "E001")


def _hint_for(tok: Token, expected: set[str]) -> str | None:
    if "EQUAL" in expected and tok.type == "NAME":
        return "a statement reads 'name = value'"
    if tok.type == "NUMBER" and "COMMA" in expected:
        return "separate items with ','"
    return None


# ---------------------------------------- syntax errors: naming the likely cause
# After the parser fails, a plain scan of the tokens before the failure looks
# for mistakes whose symptom shows up later than their cause (a missing '}'
# makes the next connection parse as an area statement).
_TOKEN = re.compile(r'''(?P<skip>\s+|\#[^\n]*) | (?P<string>"(?:[^"\\\n]|\\.)*"?)
    | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?) | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
    | (?P<op>->|==|!=|<=|>=|.)''', re.X)
_TOP_ONLY = ("area", "dynamics", "readout", "input", "model")
_BODY_ONLY = ("state", "port", "solver", "output")
_UNIT_WORDS = ("sec", "secs", "second", "seconds", "msec", "msecs", "millisecond", "milliseconds", "us", "ns",
               "min", "mins", "minute", "minutes", "hz", "Hz", "MS", "Ms", "S")


@dataclass(frozen=True)
class _Tok:
    text: str
    kind: str  # string | number | name | op
    line: int
    col: int
    pos: int


@dataclass(frozen=True)
class _Block:
    kind: str  # top | body | time: which statements it holds
    desc: str
    line: int


def _scan(source: str) -> list[_Tok]:
    toks, line, start = [], 1, 0
    for m in _TOKEN.finditer(source):
        if m.lastgroup != "skip":
            toks.append(_Tok(m.group(), m.lastgroup, line, m.start() - start + 1, m.start()))
        newlines = m.group().count("\n")
        if newlines:
            line += newlines
            start = m.start() + m.group().rindex("\n") + 1
    return toks


def _opened(toks: list[_Tok], i: int, stack: list[_Block]) -> _Block:
    """The block the '{' at toks[i] opens, judged by the nearest keyword before it."""
    outer = stack[-1].kind if stack else "top"
    for j in range(i - 1, -1, -1):
        word = toks[j].text
        if word in "{}":
            break
        if word in ("area", "dynamics") and j + 1 < i:
            return _Block("body", f"the body of {word} {toks[j + 1].text}", toks[i].line)
        if word == "time":
            return _Block("time", "the time block", toks[i].line)
        if word in ("if", "else", "for"):
            return _Block(outer, f"the '{word}' block", toks[i].line)
    return _Block(outer, "the block", toks[i].line)


def _starts_top_decl(toks: list[_Tok], i: int, block: _Block) -> str | None:
    """What top-level declaration starts at toks[i] ('a connection', "'area'"), if any."""
    nxt = [t.text for t in toks[i + 1:i + 4]] + ["", "", ""]
    t = toks[i]
    if t.text in _TOP_ONLY and toks[i + 1:i + 2] and toks[i + 1].kind == "name":
        return f"'{t.text}'"
    if t.text == "time" and nxt[0] == "{" or t.text == "param" and block.kind == "time":
        return f"'{t.text}'"
    if t.kind == "name" and (nxt[0] == "->" or nxt[0] == "." and nxt[2] == "->"):
        return "a connection"
    return None


def _located(message: str, tok: _Tok, file: str, hint: str | None, code: str = "E001") -> Diagnostic:
    return Diagnostic("error", message, Span(file, tok.line, tok.col, tok.line, tok.col + len(tok.text)), hint, code)


def _likely_cause(toks: list[_Tok], stop: int, at_eof: bool, file: str) -> Diagnostic | None:
    stack: list[_Block] = []
    for i, t in enumerate(toks):
        if t.pos > stop:
            break
        first_on_line = i == 0 or toks[i - 1].line != t.line
        found = _cause_at(toks, i, stack, first_on_line, file)
        if found is not None:
            return found
        if t.text == "{":
            stack.append(_opened(toks, i, stack))
        elif t.text == "}" and stack:
            stack.pop()
    if at_eof and stack:
        last = toks[-1] if toks else _Tok("", "op", 1, 1, 0)
        end = _Tok("", "op", last.line, last.col + len(last.text), last.pos)
        return _located(f"unexpected end of file: {stack[-1].desc} (opened at line {stack[-1].line}) "
                        "has no closing '}'", end, file, "add '}' where the block ends")
    return None


def _cause_at(toks: list[_Tok], i: int, stack: list[_Block], first_on_line: bool, file: str) -> Diagnostic | None:
    t = toks[i]
    block = stack[-1] if stack else _Block("top", "the file", 0)
    prev = toks[i - 1].text if i else ""
    if first_on_line and block.kind in ("body", "time"):
        what = _starts_top_decl(toks, i, block)
        if what is not None:
            return _located(f"{what} inside {block.desc} (opened at line {block.line}): is its '}}' missing?", t,
                            file, "close the block with '}'; areas, connections and the readout stand at the top level")
    if block.kind == "top" and first_on_line and t.text in _BODY_ONLY:
        return _located(f"'{t.text}' belongs in an area or dynamics body", t, file,
                        "move it between the '{' and '}' of an area")
    if block.kind == "top" and first_on_line and t.kind == "name" and toks[i + 1:i + 2] and toks[i + 1].text == "=":
        return _located(f"'{t.text} = ...' at the top level: declare it with 'param {t.text} = ...'", t, file,
                        "time settings go in the time block, variables in an area body")
    if t.text == "delay" and prev != "," and i + 1 < len(toks) and toks[i + 1].line == t.line:
        return _located("'delay' must follow a ',' after the pipeline", t, file, "write ', delay 2 ms'")
    if t.text == "elif":
        return _located("write 'else if', not 'elif'", t, file, None)
    if t.text in _UNIT_WORDS and i and toks[i - 1].kind == "number" and toks[i - 1].line == t.line:
        return _located(f"unknown unit '{t.text}': the units are 'ms' and 's'", t, file,
                        f"write e.g. '{toks[i - 1].text} ms'", "E003")
    return None


# ------------------------------------------------------------ tree to the AST
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


def _unescape(tok: Token, file: str) -> str:
    """A string literal's value: `\\"`, `\\\\`, `\\n` and `\\t` are escapes; any other
    backslash is a located error (once decoded as Python escapes: `\\N` crashed, `é` was mangled)."""
    raw = str(tok)[1:-1]
    for m in re.finditer(r"\\(.)", raw, re.S):
        if m[1] not in _ESCAPES:
            col = tok.column + 1 + m.start()
            raise DynError([Diagnostic("error", f"unknown escape '\\{m[1]}' in a string",
                                       Span(file, tok.line, col, tok.line, col + 2),
                                       "the escapes are \\\" \\\\ \\n \\t; write '\\\\' for a backslash", "E008")])
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m[1]], raw, flags=re.S)


def _span(file: str, meta) -> Span:
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Builds syntax.* dataclasses; every node gets the span of its text (a loop
    over the tree, not recursion: 5000 nested ifs or a 5000-term sum are fine)."""

    def __init__(self, file: str, source: str = ""):
        super().__init__()
        self.file = file
        self.source = source

    # helpers
    def _sp(self, meta) -> Span:
        return _span(self.file, meta)

    def _ident(self, tok: Token) -> S.Ident:
        if str(tok) in RESERVED_UNITS:
            span = _tok_span(self.file, tok)
            raise DynError([Diagnostic("error", f"'{tok}' is a unit and may only follow a number", span,
                                       f"write a number before it, e.g. '1 {tok}'", "E003")])
        return S.Ident(str(tok), _tok_span(self.file, tok))

    def _decl(self, tok: Token | S.Ident, what: str) -> S.Ident:
        """The name a declaration introduces; a keyword cannot be one."""
        ident = tok if isinstance(tok, S.Ident) else self._ident(tok)
        if ident.name in KEYWORDS:
            raise DynError([Diagnostic("error", f"'{ident.name}' is a reserved word and cannot name {what}",
                                       ident.span, f"choose another name, e.g. '{ident.name}_'", "E004")])
        return ident

    def _args(self, arglist):
        args, kwargs = [], []
        for a in arglist or ():
            if isinstance(a, S.Kwarg):
                kwargs.append(a)
            elif kwargs and isinstance(a, S.Name):  # a bare flag after keywords: `pointwise(bias=false, fixed)`
                kwargs.append(S.Kwarg(S.Ident(a.name, a.span), S.Bool(True, a.span)))
            elif kwargs:
                raise DynError([Diagnostic("error", "a positional argument follows a keyword argument",
                                           a.span, "put positional arguments first, as in Python", "E005")])
            else:
                args.append(a)
        return tuple(args), tuple(kwargs)

    # top level
    def start(self, meta, children):
        return children

    def model(self, meta, c):
        return S.ModelDecl(self._decl(c[0], "the model"), self._sp(meta))

    def time(self, meta, c):
        return S.TimeBlock(tuple(c), self._sp(meta))

    def time_item(self, meta, c):
        return S.TimeItem(self._ident(c[0]), c[1])

    def param(self, meta, c):
        options = tuple(c[2]) if len(c) > 2 and c[2] is not None else ()
        return S.ParamDecl(self._decl(c[0], "a param"), c[1], len(c) > 2 and c[2] is not None, self._sp(meta), options)

    def trainable(self, meta, c):
        return list(c[1] or ()) if len(c) > 1 else []

    def input(self, meta, c):
        return S.InputDecl(self._decl(c[0], "the input"), c[1], self._sp(meta))

    def shape(self, meta, c):
        return tuple(c)

    def readout(self, meta, c):
        return S.Readout(c[0], c[1], c[2], self._sp(meta))

    def area(self, meta, c):
        name, shape, template, body = c
        return S.AreaDecl(self._decl(name, "an area"), shape, template, tuple(body or ()), self._sp(meta))

    def template_call(self, meta, c):
        args, kwargs = self._args(c[1])
        return S.TemplateCall(self._ident(c[0]), args, kwargs, self._sp(meta))

    def dynamics(self, meta, c):
        name, *params, body = c
        params = tuple(p for p in params if p is not None)
        return S.DynamicsDecl(self._decl(name, "a dynamics template"), params, tuple(body), self._sp(meta))

    def tparam(self, meta, c):
        return S.TemplateParam(self._decl(c[0], "a template parameter"), c[1])

    def body(self, meta, c):
        return list(c)

    # statements
    def ode(self, meta, c):
        coef, op, deriv, rhs = c
        if op is not None and str(op) != "*":
            raise DynError([Diagnostic("error", f"unexpected '{op}': expected '*' before the derivative",
                                       _tok_span(self.file, op), "write 'tau * dr/dt = ...'", "E006")])
        var_name = str(deriv).split("/")[0].strip()[1:]
        var_span = Span(self.file, deriv.line, deriv.column + 1, deriv.line, deriv.column + 1 + len(var_name))
        return S.Ode(S.Ident(var_name, var_span), coef, rhs, self._sp(meta))

    def coef_name(self, meta, c):
        return S.Name(str(c[0]), _tok_span(self.file, c[0]))

    def assign(self, meta, c):
        return S.Assign(self._decl(c[0], "a variable"), c[1], self._sp(meta))

    def state(self, meta, c):
        return S.StateDecl(self._decl(c[0], "a state"), c[1], self._sp(meta))

    def port(self, meta, c):
        return S.PortDecl(self._decl(c[0], "a port"), self._sp(meta))

    def output(self, meta, c):
        return S.OutputStmt(self._ident(c[0]), self._sp(meta))

    def solver(self, meta, c):
        return S.SolverStmt(self._ident(c[0]), self._sp(meta))

    def _if(self, meta, c):
        cond, *rest = c
        orelse = ()
        if rest and isinstance(rest[-1], _Else):
            orelse = rest[-1].decls
            rest = rest[:-1]
        elif rest and rest[-1] is None:
            rest = rest[:-1]
        return S.If(cond, tuple(rest), orelse, self._sp(meta))

    top_if = area_if = _if

    def _else(self, meta, c):
        return _Else(tuple(c))

    top_else = area_else = _else

    # connections
    def connection(self, meta, c):
        *ends, pipeline, delay = c
        return S.Connection(tuple(ends), pipeline, delay, self._sp(meta))

    def endpoint(self, meta, c):
        port = c[1]
        if isinstance(port, Token):  # `input`, a keyword, as a port name
            port = S.Ident(str(port), _tok_span(self.file, port))
        return S.Endpoint(c[0], port, self._sp(meta))

    def pipeline(self, meta, c):
        return tuple(c)

    def op(self, meta, c):
        name, arglist, _as, alias = c
        args, kwargs = self._args(arglist)
        return S.Op(self._ident(name), args, kwargs, alias, self._sp(meta))

    def dotted(self, meta, c):
        return S.Ident(".".join(str(t) for t in c), self._sp(meta))

    def gdotted(self, meta, c):
        """An `as` name whose segments may interpolate (`as ff{k}.conv`)."""
        if all(isinstance(x, Token) or not x.parts for x in c):
            return S.Ident(".".join(str(x) if isinstance(x, Token) else x.name for x in c), self._sp(meta))
        parts: list = []
        for i, x in enumerate(c):
            parts.extend(["."] * (i > 0) + ([str(x)] if isinstance(x, Token) else list(x.parts or (x.name,))))
        return S.Ident(self._raw(meta), self._sp(meta), tuple(parts))

    # generators
    def for_loop(self, meta, c):
        var, start, stop, *body = c
        return S.For(self._decl(var, "a loop variable"), start, stop, tuple(body), self._sp(meta))

    def gname(self, meta, c):
        """A name, plain (`V1`) or interpolated (`L{i+1}_out`: its text and expressions in `parts`)."""
        if len(c) == 1:
            return self._ident(c[0])
        parts = tuple(str(x) if isinstance(x, Token) else x for x in c)
        return S.Ident(self._raw(meta), self._sp(meta), parts)

    def interp(self, meta, c):
        return c[0]

    def _raw(self, meta) -> str:
        """The text a node covers without whitespace (an interpolated name before it is expanded:
        `L{i+1}`, however it is spaced, so that layout never changes a name)."""
        return re.sub(r"\s+", "", self.source[meta.start_pos:meta.end_pos]) if self.source else "?"

    # expressions
    def arglist(self, meta, c):
        return list(c)

    def kwarg(self, meta, c):
        return S.Kwarg(self._ident(c[0]), c[1])

    def _bin(self, meta, left, op, right):
        return S.BinOp(op, left, right, self._sp(meta))

    def or_(self, meta, c):
        return self._bin(meta, c[0], "or", c[1])

    def and_(self, meta, c):
        return self._bin(meta, c[0], "and", c[1])

    def not_(self, meta, c):
        return S.Unary("not", c[0], self._sp(meta))

    def compare(self, meta, c):
        return self._bin(meta, c[0], str(c[1]), c[2])

    def binop(self, meta, c):
        return self._bin(meta, c[0], str(c[1]), c[2])

    def pow(self, meta, c):
        return self._bin(meta, c[0], "^", c[1])

    def unary_op(self, meta, c):
        return S.Unary(str(c[0]), c[1], self._sp(meta))

    def quantity(self, meta, c):
        num, unit = c
        return S.Num(float(num), str(unit) if unit is not None else None, str(num), self._sp(meta))

    def string(self, meta, c):
        return S.Str(_unescape(c[0], self.file), self._sp(meta))

    def true(self, meta, c):
        return S.Bool(True, self._sp(meta))

    def false(self, meta, c):
        return S.Bool(False, self._sp(meta))

    def name(self, meta, c):
        tok = c[0]
        ident = self._ident(tok)
        return S.Name(ident.name, ident.span)

    def call(self, meta, c):
        name, arglist, _as, alias = c
        args, kwargs = self._args(arglist)
        return S.Call(self._ident(name), args, kwargs, alias, self._sp(meta))


class _Else:
    def __init__(self, decls):
        self.decls = decls
