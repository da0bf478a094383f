"""`dynv lsp`: the language server for editors, over stdio."""
from __future__ import annotations


def register(sub):
    return sub.add_parser("lsp", help="serve the language server protocol over stdio (for editors)",
                          description="a language server for .dyn specs over stdin/stdout: diagnostics as you "
                                      "type, hover, go to definition and completion (needs pygls: "
                                      "pip install 'dynvision-dsl[lsp]')")


def run(args) -> int:
    try:
        import pygls.lsp.server  # noqa: F401 (the optional dependency, asked for before serving)
    except ModuleNotFoundError as exc:
        if exc.name not in ("pygls", "lsprotocol"):
            raise
        raise SystemExit("dynv lsp: needs pygls; install it with pip install 'dynvision-dsl[lsp]'") from None
    from ..tooling.lsp import serve

    serve()
    return 0
