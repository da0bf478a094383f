"""A Pygments lexer for `.dyn` specs, registered as the `dyn` alias through the
`pygments.lexers` entry point (so Sphinx, MkDocs and `pygmentize -l dyn` find it).

Its words come from the compiler's own tables (parse.KEYWORDS, ops.OPERATORS,
ops.FUNCTIONS, ops.MATH_FUNCTIONS, check.SOLVERS): there is no second list to drift."""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from ..frontend.check import SOLVERS
from ..ops import FUNCTIONS, MATH_FUNCTIONS, OPERATORS, REDUCTIONS
from ..frontend.parse import KEYWORDS, RESERVED_UNITS

_NAME = r"[A-Za-z_][A-Za-z_0-9]*"
_NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_END = r"(?![A-Za-z_0-9])"
# keywords that introduce a named thing on the same line: the name after them is a definition
_DEFINING = {"area": Name.Class, "dynamics": Name.Function, "model": Name.Namespace, "param": Name.Constant,
             "input": Name.Class, "state": Name.Variable}


def _definitions() -> list:
    return [(rf"({word})([ \t]+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, kind))
            for word, kind in _DEFINING.items()]


class DynLexer(RegexLexer):
    """Lexer for the `.dyn` model-spec language of dynvision-dsl."""

    name = "Dyn"
    aliases = ["dyn"]
    filenames = ["*.dyn"]
    mimetypes = ["text/x-dyn"]

    tokens = {
        "root": [
            (r"[ \t\r\n]+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            (rf"(d{_NAME})([ \t]*/[ \t]*)(dt){_END}", bygroups(Name.Variable, Operator, Name.Variable)),
            (rf"({_NUMBER})([ \t]*)({'|'.join(RESERVED_UNITS)}){_END}", bygroups(Number, Whitespace, Keyword.Type)),
            (_NUMBER, Number),
            *_definitions(),
            (words(("true", "false"), suffix=_END), Keyword.Constant),
            (words(("and", "or", "not"), suffix=_END), Operator.Word),
            (words(KEYWORDS, suffix=_END), Keyword),
            (words(tuple(OPERATORS) + tuple(FUNCTIONS) + tuple(MATH_FUNCTIONS) + REDUCTIONS[:2], suffix=_END),
             Name.Builtin),
            (words(SOLVERS, suffix=_END), Name.Builtin.Pseudo),
            (_NAME, Name),
            (r"->|==|!=|<=|>=|[-+*/^=<>|]", Operator),
            (r"[\[\](){}:,.]", Punctuation),
            (r".", Error),
        ],
    }

