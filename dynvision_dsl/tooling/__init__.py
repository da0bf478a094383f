"""Editor tooling for `.dyn` specs: a Pygments lexer, a formatter and a language server."""
