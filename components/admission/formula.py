"""Does a ScaledObject's `scalingModifiers.formula` compile as KEDA v2.20.2 compiles it?

KEDA's webhook (`validateScalingModifiersFormula`, `apis/keda/v1alpha1/scaledobject_webhook.go`)
wraps the formula in `float(...)`, compiles it with expr-lang/expr v1.17.8 against an environment
of the named, non-cpu/memory triggers (all float64, strict: any other name is "unknown name"),
then runs it once with every trigger at -1.

This checks the arithmetic part of expr's language, which is what a scaling formula is: numbers,
trigger names, `+ - * / % ** ^`, comparisons, `and or not && || !`, `a ? b : c`, `a ?? b`,
parentheses and the numeric builtins. It type-checks as expr does (`%` needs integers, `float()`
of a bool does not compile, a condition must be a bool). Anything beyond that subset (arrays,
maps, closures, `let`, pipes, string functions) is reported as not checkable, never as valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER, INT, BOOL, STRING = "float64", "int", "bool", "string"
_NUMERIC = (NUMBER, INT)
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9_]+)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+))"
    r"|(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<name>[A-Za-z_$][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|\?\?|==|!=|<=|>=|&&|\|\||\.\.|\?\.|[-+*/%^<>!?:(),.\[\]{}|#;]))"
)
# Binding power of expr-lang's binary operators (parser/operator/operator.go); ** and ^ bind right.
_BINARY = {
    "or": 10,
    "||": 10,
    "and": 15,
    "&&": 15,
    "==": 20,
    "!=": 20,
    "<": 20,
    ">": 20,
    "<=": 20,
    ">=": 20,
    "+": 30,
    "-": 30,
    "*": 60,
    "/": 60,
    "%": 60,
    "**": 100,
    "^": 100,
    "??": 500,
}
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}
_ONE_NUMBER_TO_NUMBER = {"abs", "ceil", "floor", "round"}
_BUILTINS = _ONE_NUMBER_TO_NUMBER | {"min", "max", "float", "int"}
_NOT_CHECKED = {"let", "in", "matches", "contains", "startsWith", "endsWith", "[", "{", "#", "|", ".", "?.", ";", ".."}


class FormulaError(ValueError):
    pass


class Unsupported(FormulaError):
    pass


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    names: frozenset[str]
    position: int = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        kind, value = self.take()
        if value != text:
            raise FormulaError(f"unexpected token {value or 'EOF'!r}, expected {text!r}")

    def expression(self, power: int = 0) -> str:
        left = self.unary()
        while True:
            _, op = self.peek()
            if op in _NOT_CHECKED:
                raise Unsupported(f"{op!r} is beyond the arithmetic this check understands")
            if op == "?" and power == 0:
                self.take()
                condition = left
                yes = self.expression()
                self.expect(":")
                no = self.expression()
                if condition != BOOL:
                    raise FormulaError(f"non-bool expression (type {condition}) used as condition")
                left = yes if yes == no else NUMBER if {yes, no} <= set(_NUMERIC) else "interface"
                continue
            bp = _BINARY.get(op)
            if bp is None or bp <= power and not (op in ("**", "^") and bp == power):
                return left
            self.take()
            right = self.expression(bp - 1 if op in ("**", "^") else bp)
            left = _binary(op, left, right)

    def unary(self) -> str:
        kind, value = self.peek()
        if value in _UNARY and kind in ("op", "name"):
            self.take()
            operand = self.expression(_UNARY[value])
            if value in ("not", "!"):
                if operand != BOOL:
                    raise FormulaError(f"invalid operation: {value} (mismatched type {operand})")
                return BOOL
            if operand not in _NUMERIC:
                raise FormulaError(f"invalid operation: {value} (mismatched type {operand})")
            return operand
        return self.primary()

    def primary(self) -> str:
        kind, value = self.take()
        if kind == "number":
            return NUMBER if re.search(r"[.eE]", value) and not value.lower().startswith("0x") else INT
        if kind == "string":
            return STRING
        if kind == "op" and value == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if kind == "name":
            if value in ("true", "false"):
                return BOOL
            if value == "nil":
                return "nil"
            if value in _NOT_CHECKED:
                raise Unsupported(f"{value!r} is beyond the arithmetic this check understands")
            if self.peek()[1] == "(":
                return self.call(value)
            if value not in self.names:
                raise FormulaError(f"unknown name {value}")
            return NUMBER
        if value in _NOT_CHECKED:
            raise Unsupported(f"{value!r} is beyond the arithmetic this check understands")
        raise FormulaError(f"unexpected token {value or 'EOF'!r}")

    def call(self, name: str) -> str:
        self.expect("(")
        arguments: list[str] = []
        while self.peek()[1] != ")":
            arguments.append(self.expression())
            if self.peek()[1] == ",":
                self.take()
            elif self.peek()[1] != ")":
                raise FormulaError(f"unexpected token {self.peek()[1] or 'EOF'!r} in call to {name}")
        self.take()
        if name not in _BUILTINS:
            raise Unsupported(f"function {name} is beyond the numeric builtins this check understands")
        if name in _ONE_NUMBER_TO_NUMBER or name in ("float", "int"):
            if len(arguments) != 1:
                raise FormulaError(f"invalid number of arguments (expected 1, got {len(arguments)})")
            if arguments[0] not in (*_NUMERIC, STRING) or (arguments[0] == STRING and name not in ("float", "int")):
                raise FormulaError(f"invalid argument for {name} (type {arguments[0]})")
            return INT if name == "int" else NUMBER if name != "abs" else arguments[0]
        if not arguments or any(a not in _NUMERIC for a in arguments):
            raise FormulaError(f"invalid arguments for {name}: {', '.join(arguments) or 'none'}")
        return NUMBER


def _binary(op: str, left: str, right: str) -> str:
    if op in ("or", "||", "and", "&&"):
        if left != BOOL or right != BOOL:
            raise FormulaError(f"invalid operation: {op} (mismatched types {left} and {right})")
        return BOOL
    if op in ("==", "!="):
        return BOOL
    if op == "??":
        return left if left == right else NUMBER if {left, right} <= set(_NUMERIC) else "interface"
    if left not in _NUMERIC or right not in _NUMERIC:
        if op == "+" and left == right == STRING:
            return STRING
        raise FormulaError(f"invalid operation: {op} (mismatched types {left} and {right})")
    if op in ("<", ">", "<=", ">="):
        return BOOL
    if op == "%":
        if left != INT or right != INT:
            raise FormulaError(f"invalid operation: % (mismatched types {left} and {right})")
        return INT
    if op in ("/", "**", "^"):
        return NUMBER
    return INT if left == right == INT else NUMBER


def formula_problem(formula: str, trigger_names: frozenset[str]) -> str | None:
    """Why KEDA would refuse this scalingModifiers formula, or None. Trigger names are the
    environment (named, non-cpu/memory triggers)."""
    tokens, position = [], 0
    while position < len(formula):
        match = _TOKEN.match(formula, position)
        if not match or match.end() == position:
            if formula[position:].strip() == "":
                break
            return f"unexpected character {formula[position:].strip()[0]!r}"
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    parser = _Parser(tokens, trigger_names)
    try:
        result = parser.expression()
        if parser.peek()[0] != "end":
            raise FormulaError(f"unexpected token {parser.peek()[1]!r}")
        if result not in (*_NUMERIC, "interface", "nil"):
            raise FormulaError(f"invalid argument for float (type {result})")  # KEDA wraps the formula in float()
    except Unsupported as exc:
        return f"not checked here: {exc}"
    except FormulaError as exc:
        return str(exc)
    return None
