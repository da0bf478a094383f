"""`dynv lsp`: a language server for `.dyn` specs over stdio (pygls).

Diagnostics (exact ranges and codes) as you type, hover (an area's shape,
first present step and equations; a param's value and dimension; an
operator's arguments), go to definition for areas, params, templates and the
input, and completion of names, keywords and operators. The analysis half
(`analyse`, `hover`, `definitions`, `completions`) is plain Python over the
frontend, which never imports torch, so the server starts in well under a second.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..frontend import ir
from ..frontend import syntax as S
from ..frontend.check import SOLVERS, check_module
from ..diagnostics import Diagnostic, DynError, Span
from ..ops import FUNCTIONS, MATH_FUNCTIONS, OPERATORS, REDUCTIONS
from ..frontend.parse import KEYWORDS, parse
from ..schedule import build_schedule
from ..frontend.values import Evaluator, Val, dim_text, err, fmt_quantity, source_text

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass(frozen=True)
class Symbol:
    """A name a spec declares: `kind` is area, param, template, input or state."""

    name: str
    kind: str
    span: Span  # the name where it is declared
    decl: object  # the syntax node that declares it


@dataclass
class Analysis:
    """Everything the server knows about one version of a document."""

    source: str
    file: str
    diagnostics: list[Diagnostic]
    module: S.Module | None = None
    model: ir.Model | None = None
    present: dict[str, int | None] = field(default_factory=dict)  # first present step, from step 0
    symbols: dict[str, list[Symbol]] = field(default_factory=dict)


def analyse(source: str, file: str = "<string>") -> Analysis:
    """Parse, check and schedule `source`, as `dynv check` does, keeping the stages' values."""
    try:
        module = parse(source, file)
    except DynError as exc:
        return Analysis(source, file, exc.diagnostics)
    model, diags = check_module(module)
    present = {}
    if model is not None:
        schedule = build_schedule(model)
        diags = diags + schedule.diagnostics
        present = {a: None if s is None else s - model.idle for a, s in schedule.present_from.items()}
    diags = sorted(diags, key=lambda d: (d.span.file != file, d.span.line, d.span.col))
    return Analysis(source, file, diags, module, model, present, _symbols(module.decls))


def analyse_or_report(source: str, file: str = "<string>") -> Analysis:
    """`analyse`, with a compiler crash turned into one diagnostic: the server must outlive any bug."""
    try:
        return analyse(source, file)
    except Exception as exc:  # noqa: BLE001 (reported to the editor, not swallowed)
        message = f"internal error while checking this file: {type(exc).__name__}: {exc}"
        return Analysis(source, file, [Diagnostic("error", message, Span(file, 1, 1, 1, 2), "please report it",
                                                  "internal")])


def _symbols(decls, out: dict[str, list[Symbol]] | None = None) -> dict[str, list[Symbol]]:
    """Every declaration in `decls`, both branches of every `if` included, by name."""
    out = {} if out is None else out
    for d in decls:
        named = {S.AreaDecl: "area", S.ParamDecl: "param", S.DynamicsDecl: "template", S.InputDecl: "input",
                 S.StateDecl: "state"}.get(type(d))
        if named is not None:
            ident = d.var if isinstance(d, S.StateDecl) else d.name
            out.setdefault(ident.name, []).append(Symbol(ident.name, named, ident.span, d))
        if isinstance(d, S.If):
            _symbols(d.then + d.orelse, out)
        if isinstance(d, (S.AreaDecl, S.DynamicsDecl)):
            _symbols(d.body, out)
    return out


def word_at(source: str, line: int, character: int) -> str | None:
    """The name under a 0-based (line, character) position, or None."""
    lines = source.splitlines()
    if not 0 <= line < len(lines):
        return None
    for m in _WORD.finditer(lines[line]):
        if m.start() <= character <= m.end():
            return m.group()
    return None


# --------------------------------------------------------------------- hover
def _template_param(a: Analysis, name: str, line: int | None) -> tuple[S.DynamicsDecl, S.TemplateParam] | None:
    """The parameter `name` of the dynamics template whose text holds 1-based `line`, if any."""
    if line is None:
        return None
    for d in _decls(a, "template"):
        if d.span.line <= line <= d.span.end_line:
            return next(((d, p) for p in d.params if p.name.name == name), None)
    return None


def _decls(a: Analysis, kind: str) -> list:
    return [s.decl for syms in a.symbols.values() for s in syms if s.kind == kind]


def hover(a: Analysis, name: str, line: int | None = None) -> str | None:
    """Markdown describing `name` (as seen on 1-based `line`): a template parameter, a declared
    thing, then an operator or function."""
    found = _template_param(a, name, line)
    if found is not None:
        return _hover_template_param(a, *found)
    symbols = a.symbols.get(name, [])
    kinds = {s.kind for s in symbols}
    if "area" in kinds:
        return _hover_area(a, name)
    if "param" in kinds:
        return _hover_param(a, name)
    if "template" in kinds:
        return _hover_template(a, name)
    if "input" in kinds and a.model is not None:
        inp = a.model.input_named(name) or a.model.input
        return f"**input** `{name}` `[{', '.join(map(str, inp.shape))}]`"
    if name in OPERATORS:
        op = OPERATORS[name]
        return f"**operator** `{name}({_signature(op.args)})`: {op.doc}"
    if name in FUNCTIONS:
        fn = FUNCTIONS[name]
        return f"**function** `{name}({_signature(fn.args)})`: {fn.doc}"
    return None


def _hover_template_param(a: Analysis, d: S.DynamicsDecl, p: S.TemplateParam) -> str:
    default = f", default `{source_text(a.source, p.default.span)}`" if p.default is not None else ""
    given = []
    for area in _decls(a, "area"):
        if area.template is not None and area.template.name.name == d.name.name:
            given += [f"{area.name.name}: `{source_text(a.source, k.value.span)}`" for k in area.template.kwargs
                      if k.name.name == p.name.name]
    return f"**template parameter** `{p.name.name}` of `{d.name.name}`{default}" + (
        f"\n\ngiven by {', '.join(given)}" if given else "")


def _signature(args) -> str:
    return ", ".join(a.name if a.required else f"{a.name}={a.default!r}" for a in args)


def _hover_area(a: Analysis, name: str) -> str:
    area = a.model.areas.get(name) if a.model is not None else None
    if area is None:  # errors, or not in the variant the params select
        head = source_text(a.source, a.symbols[name][0].decl.span).rstrip(" {")
        return f"**area** `{head}` (not in the checked model: the spec has errors, or its params leave it out)"
    dims = ", ".join(map(str, area.shape))
    step = a.present.get(name)
    when = "never present" if step is None else f"present from step {step} ({fmt_quantity(step * a.model.dt, 1)})"
    lines = [f"**area** `{name}` `[{dims}]`, {when}",
             f"dynamics: {area.template or 'its own body'}, solver {area.solver}, output `{area.output}`"]
    eqs = [source_text(a.source, e.span) for e in (*area.before_odes, *area.odes, *area.assigns)]
    return "\n\n".join(lines) + ("\n\n```dyn\n" + "\n".join(eqs) + "\n```" if eqs else "")


def _hover_param(a: Analysis, name: str) -> str:
    decl = next(s.decl for s in a.symbols[name] if s.kind == "param")
    try:
        val = _param_evaluator(a)(decl.value)
    except DynError:
        return f"**param** `{name} = {source_text(a.source, decl.value.span)}` (its value has errors)"
    if a.model is not None and name in a.model.params and val.is_number:
        val = Val(a.model.params[name], val.dim)  # the value the checked variant uses
    trainable = ", trainable" if decl.trainable else ""
    return f"**param** `{name}` = `{val.describe()}` ({dim_text(val.dim)}{trainable})"


def _param_evaluator(a: Analysis) -> Evaluator:
    """Evaluates constant expressions over the spec's params (first declaration of each name)."""
    busy: set[str] = set()

    def lookup(name: str, span: Span) -> Val:
        decls = [s.decl for s in a.symbols.get(name, []) if s.kind == "param"]
        if not decls or name in busy:
            raise err(f"unknown param '{name}'", span, code="E020")
        busy.add(name)
        try:
            return evaluate(decls[0].value)
        finally:
            busy.discard(name)

    evaluate = Evaluator(a.source, lookup)
    return evaluate


def _hover_template(a: Analysis, name: str) -> str:
    decl = next(s.decl for s in a.symbols[name] if s.kind == "template")
    users = sorted(n for n, area in (a.model.areas.items() if a.model else ()) if area.template == name)
    head = source_text(a.source, decl.span).rstrip(" {")
    return f"**template** `{head}`" + (f"\n\nused by {', '.join(users)}" if users else "")


# ------------------------------------------------------ definitions, completion
def definitions(a: Analysis, name: str, line: int | None = None) -> list[Span]:
    """Where `name` (as seen on 1-based `line`) is declared: a template parameter, or an area,
    param, template or input (in every branch of an `if`)."""
    found = _template_param(a, name, line)
    if found is not None:
        return [found[1].name.span]
    return [s.span for s in a.symbols.get(name, []) if s.kind in ("area", "param", "template", "input")]


@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # area param template input state keyword operator function solver
    detail: str = ""


def completions(a: Analysis) -> list[Completion]:
    """Every name the spec declares, then keywords, operators, functions and solvers."""
    out = [Completion(name, syms[0].kind, syms[0].kind) for name, syms in sorted(a.symbols.items())]
    out += [Completion(k, "keyword") for k in KEYWORDS]
    out += [Completion(n, "operator", f"{n}({_signature(op.args)}): {op.doc}") for n, op in OPERATORS.items()]
    out += [Completion(n, "function", f"{n}({_signature(f.args)}): {f.doc}") for n, f in FUNCTIONS.items()]
    out += [Completion(n, "function", f"{n}: {k} argument{'s' * (k != 1)}") for n, k in MATH_FUNCTIONS.items()]
    out += [Completion(n, "function", f"{n}(x, channels | space): reduce and broadcast back")
            for n in REDUCTIONS if n not in MATH_FUNCTIONS]
    out += [Completion(s, "solver", "solver") for s in SOLVERS]
    return out


# -------------------------------------------------------------------- server
def _range(span: Span):
    from lsprotocol import types

    if span.line <= 0:  # no place in the file (e.g. an override)
        return types.Range(types.Position(0, 0), types.Position(0, 0))
    return types.Range(types.Position(span.line - 1, span.col - 1),
                       types.Position(max(span.end_line, span.line) - 1, max(span.end_col - 1, 0)))


def lsp_diagnostic(d: Diagnostic):
    """A Diagnostic as LSP sends it: 0-based range, severity, code, and the hint after the message."""
    from lsprotocol import types

    severity = types.DiagnosticSeverity.Error if d.is_error else types.DiagnosticSeverity.Warning
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    return types.Diagnostic(_range(d.span), message, severity, d.code or None, source="dynv")


_KINDS = {"area": "Class", "param": "Constant", "template": "Function", "input": "Variable", "state": "Variable",
          "keyword": "Keyword", "operator": "Operator", "function": "Function", "solver": "EnumMember"}


def server():
    """The language server, its features registered; `server().start_io()` serves stdio."""
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer

    ls = LanguageServer("dynv-lsp", "0.1.0", text_document_sync_kind=types.TextDocumentSyncKind.Full)
    last: dict[str, Analysis] = {}  # per document: the latest analysis, the latest that parsed,
    parsed: dict[str, Analysis] = {}  # and the latest that checked (its shapes and steps)
    checked: dict[str, Analysis] = {}

    def refresh(uri: str) -> None:
        doc = ls.workspace.get_text_document(uri)
        a = analyse_or_report(doc.source, doc.path or uri)
        last[uri] = a
        if a.module is not None:
            parsed[uri] = a
        if a.model is not None:
            checked[uri] = a
        diags = [lsp_diagnostic(d) for d in a.diagnostics if d.span.file in (a.file, "--set") or d.span.line <= 0]
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri, diags, doc.version))

    def known(uri: str) -> Analysis | None:
        """The latest analysis that parsed (names stay known while a line is half typed)."""
        return parsed.get(uri) or last.get(uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        refresh(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        for table in (last, parsed, checked):
            table.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(params.text_document.uri, []))

    @ls.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        a, name = _target(ls, known(uri), params)
        if a is not None and a.model is None and uri in checked and name in checked[uri].symbols:
            a = checked[uri]  # while the text has errors, describe it as it last checked
        text = hover(a, name, params.position.line + 1) if a is not None and name else None
        return None if text is None else types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))

    @ls.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(params: types.DefinitionParams) -> list[types.Location]:
        a, name = _target(ls, known(params.text_document.uri), params)
        spans = definitions(a, name, params.position.line + 1) if a is not None and name else []
        return [types.Location(params.text_document.uri, _range(s)) for s in spans]

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", ":", "|"]))
    def on_completion(params: types.CompletionParams) -> types.CompletionList:
        a = known(params.text_document.uri)
        items = [types.CompletionItem(c.label, kind=getattr(types.CompletionItemKind, _KINDS[c.kind]),
                                      detail=c.detail or None) for c in (completions(a) if a else [])]
        return types.CompletionList(is_incomplete=False, items=items)

    return ls


def _target(ls, a: Analysis | None, params) -> tuple[Analysis | None, str | None]:
    """The analysis and the word under the cursor of a position request (on the current text)."""
    if a is None:
        return None, None
    doc = ls.workspace.get_text_document(params.text_document.uri)
    return a, word_at(doc.source, params.position.line, params.position.character)


def serve() -> None:
    """Serve the language server protocol on stdin/stdout until the client exits."""
    server().start_io()
