"""Does an alert's label or annotation parse as a Prometheus alert template?

Prometheus Operator's webhook runs Prometheus' `rulefmt` on every PrometheusRule, and for alerting
rules that parses (never executes) each label and annotation value as a Go `text/template`
(`testTemplateParsing`, prometheus v3.13.1 `model/rulefmt/rulefmt.go`) with Prometheus' template
functions and four predefined variables. So `{{ $labels.pod }}` passes, and `{{ $label.pod }}`, an
unknown function, a `{{ if }}` without `{{ end }}` or a typographic quote inside `{{ }}` refuse
the whole object.

This is a parser for that subset of `text/template`: actions, comments, trim markers, strings,
numbers, fields, variables and their scopes, pipelines, parentheses and control structures. It
checks what Go's parser checks (syntax, defined functions, defined variables, block nesting) and
nothing it does not (field names, argument types).
"""

from __future__ import annotations

import re

# Go text/template builtins and Prometheus' template funcMap (template/template.go at v3.13.1).
TEMPLATE_FUNCTIONS = frozenset(
    "and call html index slice js len not or print printf println urlquery eq ne lt le gt ge".split()
    + "query first label value strvalue args reReplaceAll safeHtml match title toUpper toLower graphLink tableLink "
    "sortByLabel stripPort stripDomain humanize humanize1024 humanizeDuration humanizePercentage humanizeTimestamp "
    "toTime toDuration now pathPrefix externalURL parseDuration urlQueryEscape".split()
)
# rulefmt prepends {{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}
ALERT_VARIABLES = frozenset({"$", "$labels", "$externalLabels", "$externalURL", "$value"})

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<char>'(?:[^'\\\n]|\\.)+')
      | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:[0-9][0-9_]*)?\.?[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?)i?)
      | (?P<variable>\$[A-Za-z0-9_]*)
      | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
      | (?P<dot>\.)
      | (?P<identifier>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<declare>:=)
      | (?P<assign>=)
      | (?P<pipe>\|)
      | (?P<open>\()
      | (?P<close>\))
      | (?P<comma>,)""",
    re.VERBOSE,
)
_CONTROL = {"if", "range", "with", "block"}
_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}


class TemplateError(ValueError):
    pass


def _actions(text: str) -> list[str]:
    """The insides of every {{ }} action, trim markers removed and comments skipped (Go's lexer:
    a comment starts right after `{{` or `{{- ` and ends right before `}}` or ` -}}`)."""
    actions, position = [], 0
    while (start := text.find("{{", position)) >= 0:
        inner = start + 2
        if re.match(r"-\s", text[inner : inner + 2]):
            inner += 2  # the left trim marker and its space
        if text.startswith("/*", inner):
            close = text.find("*/", inner)
            if close < 0:
                raise TemplateError("unclosed comment")
            tail = re.match(r"(\s-)?}}", text[close + 2 :])
            if not tail:
                raise TemplateError("comment ends before closing delimiter")
            position = close + 2 + tail.end()
            continue
        end = _closing(text, inner)
        body = text[inner:end]
        actions.append(body[:-1] if re.search(r"\s-$", body) else body)
        position = end + 2
    return actions


def _closing(text: str, start: int) -> int:
    """Index of the `}}` closing the action opened before `start`, skipping quoted strings."""
    i = start
    while i < len(text):
        if text.startswith("}}", i):
            return i
        if text[i] in "\"`'":
            quote, i = text[i], i + 1
            while i < len(text) and text[i] != quote:
                if text[i] == "\n" and quote != "`":
                    raise TemplateError("unterminated quoted string")
                i += 2 if text[i] == "\\" and quote != "`" else 1
            if i >= len(text):
                raise TemplateError("unterminated quoted string")
        i += 1
    raise TemplateError("unclosed action")


def _tokens(action: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(action):
        match = _TOKEN.match(action, position)
        if not match:
            char = action[position]
            raise TemplateError(f"unrecognized character in action: U+{ord(char):04X} {char!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


class _Checker:
    def __init__(self, functions: frozenset[str], variables: frozenset[str]):
        self.functions = functions
        self.scopes: list[set[str]] = [set(variables)]
        self.blocks: list[str] = []

    def defined(self, name: str) -> bool:
        base = name.split(".", 1)[0]
        return any(base in scope for scope in self.scopes)

    def action(self, tokens: list[tuple[str, str]]) -> None:
        if not tokens:
            raise TemplateError("missing value for command")
        kind, word = tokens[0]
        if kind == "identifier" and word in _KEYWORDS:
            self.keyword(word, tokens[1:])
        else:
            self.pipeline(tokens)

    def keyword(self, word: str, rest: list[tuple[str, str]]) -> None:
        if word in ("if", "with", "range"):
            self.blocks.append(word)
            self.scopes.append(set())
            self.pipeline(rest, range_pair=word == "range")
        elif word == "else":
            # Variables of the first branch stay visible in the else branch, as in Go's parser.
            if not self.blocks or self.blocks[-1] not in ("if", "with", "range"):
                raise TemplateError("unexpected {{else}}")
            if rest:
                if rest[0] != ("identifier", self.blocks[-1]) or self.blocks[-1] == "range":
                    raise TemplateError(f"unexpected {rest[0][1]!r} in else")
                self.pipeline(rest[1:])
        elif word == "end":
            if rest:
                raise TemplateError("unexpected token after end")
            if not self.blocks:
                raise TemplateError("unexpected {{end}}")
            self.blocks.pop()
            self.scopes.pop()
        elif word in ("break", "continue"):
            if rest or "range" not in self.blocks:
                raise TemplateError(f"{{{{{word}}}}} outside {{{{range}}}}")
        else:  # define, template, block: a quoted name, then (template, block) an optional pipeline
            if not rest or rest[0][0] not in ("string", "raw"):
                raise TemplateError(f"{word}: expected a quoted template name")
            if word == "define":
                if len(rest) > 1:
                    raise TemplateError("unexpected token after define clause")
                self.blocks.append(word)
                self.scopes.append({"$"})
            elif rest[1:]:
                self.pipeline(rest[1:])
            if word == "block":
                self.blocks.append(word)
                self.scopes.append(set())

    def pipeline(self, tokens: list[tuple[str, str]], range_pair: bool = False) -> None:
        if not tokens:
            raise TemplateError("missing value for command")
        declared: list[str] = []
        if len(tokens) >= 2 and tokens[0][0] == "variable" and tokens[1][0] == "assign":
            if not self.defined(tokens[0][1]):
                raise TemplateError(f'undefined variable "{tokens[0][1]}"')
            tokens = tokens[2:]
        elif len(tokens) >= 2 and tokens[0][0] == "variable" and tokens[1][0] == "declare":
            declared, tokens = [tokens[0][1]], tokens[2:]
        elif range_pair and len(tokens) >= 4 and [k for k, _ in tokens[:4]] == ["variable", "comma", "variable", "declare"]:
            declared, tokens = [tokens[0][1], tokens[2][1]], tokens[4:]
        stray = next((word for kind, word in tokens if kind in ("declare", "assign", "comma")), None)
        if stray:
            raise TemplateError(f"unexpected {stray!r} in command")
        self.commands(tokens)
        self.scopes[-1].update(declared)

    def commands(self, tokens: list[tuple[str, str]]) -> None:
        depth, command = 0, []
        for kind, word in [*tokens, ("pipe", "|")]:
            if kind == "open":
                depth += 1
            elif kind == "close":
                depth -= 1
                if depth < 0:
                    raise TemplateError("unexpected right paren")
            if kind == "pipe" and depth == 0:
                if not command:
                    raise TemplateError("missing value for command")
                command = []
                continue
            command.append((kind, word))
            self.operand(kind, word)
        if depth:
            raise TemplateError("unclosed left paren")

    def operand(self, kind: str, word: str) -> None:
        if kind == "identifier":
            if word in ("true", "false", "nil"):
                return
            if word in _KEYWORDS:
                raise TemplateError(f"unexpected {word!r} in operand")
            if word not in self.functions:
                raise TemplateError(f'function "{word}" not defined')
        elif kind == "variable" and not self.defined(word):
            raise TemplateError(f'undefined variable "{word.split(".", 1)[0]}"')


def _with_fields(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join `$labels` `.pod` into one variable operand (a field chain on a variable)."""
    out: list[tuple[str, str]] = []
    for kind, word in tokens:
        if kind == "field" and out and out[-1][0] == "variable":
            out[-1] = ("variable", out[-1][1] + word)
            continue
        out.append((kind, word))
    return out


def template_problem(
    text: str, functions: frozenset[str] = TEMPLATE_FUNCTIONS, variables: frozenset[str] = ALERT_VARIABLES
) -> str | None:
    """Why Go's text/template parser (with Prometheus' functions) refuses `text`, or None."""
    try:
        checker = _Checker(functions, variables)
        for action in _actions(text):
            checker.action(_with_fields(_tokens(action)))
        if checker.blocks:
            return f"unexpected EOF: {{{{{checker.blocks[-1]}}}}} has no {{{{end}}}}"
    except TemplateError as exc:
        return str(exc)
    return None
