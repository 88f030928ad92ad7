"""A small computer algebra for gradients: canonical expressions with exact rational coefficients.

An expression is a *polynomial*: a sum of terms, each an exact :class:`~fractions.Fraction`
times a product of *atoms* raised to rational powers. Atoms are symbols (``A``, ``pi``),
function applications (``sin(...)``, ``pow(A, B)``) and groups (a sum kept whole, e.g. under a
negative power: ``1/(A + 1)``). Every polynomial and atom is interned under an integer id, so
equal expressions are the same id, sharing is free, and hashing never recurses however deeply
expressions nest. Building an expression simplifies it: constants fold, ``x*1``, ``x+0``,
``x*0``, ``--x``, ``x^1`` vanish, like terms collect, powers of one base merge, and sums of
symbols multiply out (up to a size limit); functions stay as they are.

Printing (:meth:`Algebra.text`) gives gradcalc syntax, so every formula can be parsed again;
:meth:`Algebra.program` binds shared sub-expressions to names so that the text grows with the
expression's graph, not with the number of paths through it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import TypeAlias

__all__ = ["Algebra", "ExpressionTooLarge"]

# Rationals are ints where integral: Fraction hashing costs microseconds, and every monomial
# and every coefficient is hashed each time an expression is interned.
Rational: TypeAlias = int | Fraction
Monomial = tuple[tuple[int, Rational], ...]  # (atom id, exponent), sorted by atom id
Terms = tuple[tuple[Monomial, Rational], ...]  # sorted by monomial
AtomKey = tuple[str, str, tuple[int, ...]]

# Multiplying out stops here: a product whose expansion would have more terms keeps its
# factors as groups, e.g. (A + B)^50 stays a power.
_EXPAND_LIMIT = 64

# A product with more factors than this is kept whole when multiplied further (_compact).
_FLAT_ATOMS = 8

ZERO: Rational = 0
ONE: Rational = 1


def _q(x: Rational) -> Rational:
    """An integral rational as an int (hashes and compares fast), others as a Fraction."""
    return x.numerator if x.denominator == 1 else x

# Exact values of functions at exact arguments, where the result is rational.
_FOLD: dict[str, Callable[..., Rational | None]] = {
    "sin": lambda x: ZERO if x == 0 else None,
    "tan": lambda x: ZERO if x == 0 else None,
    "asin": lambda x: ZERO if x == 0 else None,
    "atan": lambda x: ZERO if x == 0 else None,
    "sinh": lambda x: ZERO if x == 0 else None,
    "tanh": lambda x: ZERO if x == 0 else None,
    "cos": lambda x: ONE if x == 0 else None,
    "cosh": lambda x: ONE if x == 0 else None,
    "exp": lambda x: ONE if x == 0 else None,
    "log": lambda x: ZERO if x == 1 else None,
    "log2": lambda x: _exact_log(x, 2),
    "log10": lambda x: _exact_log(x, 10),
    "sqrt": lambda x: _exact_root(x),
    "abs": lambda x: abs(x),
    "relu": lambda x: max(x, ZERO),
    "sign": lambda x: Fraction((x > 0) - (x < 0)),
    "heaviside": lambda x, h: ONE if x > 0 else ZERO if x < 0 else h,
    "max": lambda a, b: max(a, b),
    "min": lambda a, b: min(a, b),
    "sigmoid": lambda x: Fraction(1, 2) if x == 0 else None,
}


def _exact_root(x: Rational) -> Rational | None:
    if x < 0:
        return None
    p, q = math.isqrt(x.numerator), math.isqrt(x.denominator)
    return Fraction(p, q) if p * p == x.numerator and q * q == x.denominator else None


def _exact_log(x: Rational, base: int) -> Rational | None:
    if x <= 0 or x.denominator != 1:
        return None
    n, power = x.numerator, 0
    while n % base == 0:
        n, power = n // base, power + 1
    return Fraction(power) if n == 1 else None


class ExpressionTooLarge(Exception):
    """An expression outgrew the limits a readable formula can have."""


class Algebra:
    """Interned canonical expressions. Expressions are integer ids; build them with
    :meth:`number`, :meth:`symbol`, :meth:`add`, :meth:`mul`, :meth:`pow`, :meth:`call`..."""

    def __init__(self) -> None:
        self._polys: list[Terms] = []
        self._poly_ids: dict[Terms, int] = {}
        # An atom: (kind, name, operands): ("sym", "A", ()), ("func", "sin", (poly,)),
        # ("group", "", (poly,)).
        self._atoms: list[AtomKey] = []
        self._atom_ids: dict[AtomKey, int] = {}
        self._plain: list[bool] = []  # poly made of symbols only (safe to multiply out)
        self.zero = self._poly(())
        self.one = self._poly((((), ONE),))

    # --- construction ------------------------------------------------------------------

    def _poly(self, terms: Terms) -> int:
        found = self._poly_ids.get(terms)
        if found is None:
            found = self._poly_ids[terms] = len(self._polys)
            self._polys.append(terms)
            self._plain.append(all(self._atoms[a][0] == "sym" for m, _ in terms for a, _ in m))
        return found

    def _atom(self, key: AtomKey) -> int:
        found = self._atom_ids.get(key)
        if found is None:
            found = self._atom_ids[key] = len(self._atoms)
            self._atoms.append(key)
        return found

    def _from(self, terms: dict[Monomial, Rational]) -> int:
        return self._poly(tuple(sorted((m, _q(c)) for m, c in terms.items() if c != 0)))

    def number(self, value: Rational) -> int:
        """The constant ``value``."""
        value = _q(Fraction(value))
        return self._poly((((), value),)) if value else self.zero

    def symbol(self, name: str) -> int:
        """The symbol ``name`` (an input, a named value, or ``pi``/``e``)."""
        return self._single(self._atom(("sym", name, ())))

    def _single(self, atom: int) -> int:
        """The expression that is just ``atom``."""
        monomial: Monomial = ((atom, ONE),)
        return self._poly(((monomial, ONE),))

    def constant_value(self, expr: int) -> Rational | None:
        """The exact value of ``expr`` if it is a constant."""
        terms = self._polys[expr]
        if not terms:
            return ZERO
        if len(terms) == 1 and terms[0][0] == ():
            return terms[0][1]
        return None

    def add(self, *exprs: int) -> int:
        total: dict[Monomial, Rational] = {}
        for expr in exprs:
            for monomial, coefficient in self._polys[expr]:
                total[monomial] = total.get(monomial, ZERO) + coefficient
        result = self._from(total)
        return self._factor_groups(result) if len(self._polys[result]) > 1 else result

    def _factor_groups(self, expr: int) -> int:
        """Take a group every term shares out of the sum: G*cos(X) - G*sin(X) becomes
        G*(cos(X) - sin(X)). Adjoints arriving over two paths share their consumer's factor;
        without this, a diamond chain's gradient would double in length at every level."""
        terms = self._polys[expr]
        common: dict[int, Rational] | None = None
        for monomial, _ in terms:
            groups = {a: e for a, e in monomial if e > 0 and self._atoms[a][0] == "group"}
            common = groups if common is None else {
                a: min(e, groups[a]) for a, e in common.items() if a in groups}
            if not common:
                return expr
        assert common
        rest: dict[Monomial, Rational] = {}
        for monomial, coefficient in terms:
            exponents = dict(monomial)
            for atom, exponent in common.items():
                exponents[atom] -= exponent
            reduced = tuple(sorted((a, _q(e)) for a, e in exponents.items() if e != 0))
            rest[reduced] = rest.get(reduced, ZERO) + coefficient
        remainder = self._from(rest)
        return self._product([*common.items(), (self._group_atom(remainder), ONE)], ONE)

    def identity(self, expr: int) -> int:
        return expr

    def neg(self, expr: int) -> int:
        return self._poly(tuple((m, -c) for m, c in self._polys[expr]))

    def sub(self, a: int, b: int) -> int:
        return self.add(a, self.neg(b))

    def mul(self, a: int, b: int) -> int:
        a, b = self._compact(a), self._compact(b)
        pa, pb = self._polys[a], self._polys[b]
        if not pa or not pb:
            return self.zero
        if len(pa) > 1 and len(pb) > 1 and not (
                self._plain[a] and self._plain[b] and len(pa) * len(pb) <= _EXPAND_LIMIT):
            # Keep the sums whole: (cos(X) - sin(X))*(cos(Y) - sin(Y)) stays a product.
            return self._product([(self._group_atom(a), ONE), (self._group_atom(b), ONE)],
                                 ONE)
        if len(pa) > 1 and len(pb) == 1 and not self._plain[a] and not self._is_number(b):
            return self._product([(self._group_atom(a), ONE), *pb[0][0]], pb[0][1])
        if len(pb) > 1 and len(pa) == 1 and not self._plain[b] and not self._is_number(a):
            return self._product([*pa[0][0], (self._group_atom(b), ONE)], pa[0][1])
        total: dict[Monomial, Rational] = {}
        for ma, ca in pa:
            for mb, cb in pb:
                monomial = self._merge(ma, mb)
                total[monomial] = total.get(monomial, ZERO) + ca * cb
        return self._from(total)

    def _compact(self, expr: int) -> int:
        """A product of many factors as one group, so that a chain of products adds one
        factor at a time instead of copying an ever longer product (linear, not quadratic)."""
        terms = self._polys[expr]
        if len(terms) == 1 and len(terms[0][0]) > _FLAT_ATOMS:
            return self._single(self._atom(("group", "", (expr,))))
        return expr

    def _is_number(self, expr: int) -> bool:
        return self.constant_value(expr) is not None

    def _product(self, factors: Iterable[tuple[int, Rational]], coefficient: Rational) -> int:
        exponents: dict[int, Rational] = {}
        for atom, exponent in factors:
            exponents[atom] = exponents.get(atom, ZERO) + exponent
        monomial = tuple(sorted((a, _q(e)) for a, e in exponents.items() if e != 0))
        return self._poly(((monomial, _q(coefficient)),)) if coefficient else self.zero

    def _merge(self, a: Monomial, b: Monomial) -> Monomial:
        if not a:
            return b
        if not b:
            return a
        exponents = dict(a)
        for atom, exponent in b:
            exponents[atom] = exponents.get(atom, ZERO) + exponent
        return tuple(sorted((x, _q(e)) for x, e in exponents.items() if e != 0))

    def _group_atom(self, expr: int) -> int:
        """A sum as one atom (so it can be a factor or take a power without expanding)."""
        terms = self._polys[expr]
        if len(terms) == 1 and len(terms[0][0]) == 1 and terms[0][1] == 1 \
                and terms[0][0][0][1] == 1:
            return terms[0][0][0][0]  # already a single atom
        return self._atom(("group", "", (expr,)))

    def div(self, a: int, b: int) -> int:
        return self.mul(a, self.pow(b, self.number(-1)))

    def power(self, base: int, n: Rational) -> int:
        """``base`` to the constant power ``n``."""
        return self.pow(base, self.number(n))

    def pow(self, base: int, exponent: int) -> int:
        n = self.constant_value(exponent)
        if n is None:
            return self.call("pow", base, exponent)
        if n == 0:
            return self.one
        if n == 1:
            return base
        terms = self._polys[base]
        if not terms:
            if n < 0:
                raise ZeroDivisionError("0 has no negative powers")
            return self.zero
        if len(terms) == 1:
            monomial, coefficient = terms[0]
            scaled = self._rational_power(coefficient, n) if _distributes(monomial, n) else None
            if scaled is not None:
                return self._product(((a, e * n) for a, e in monomial), scaled)
            if not monomial:
                return self.call("pow", base, exponent)
            # A coefficient without an exact root: keep it inside the power.
            return self._product([(self._atom(("group", "", (base,))), n)], ONE)
        if n.denominator == 1 and n > 0 and self._plain[base] and len(terms) ** int(n) <= \
                _EXPAND_LIMIT:
            result = self.one
            for _ in range(int(n)):
                result = self.mul(result, base)
            return result
        return self._product([(self._atom(("group", "", (base,))), n)], ONE)

    def _rational_power(self, c: Rational, n: Rational) -> Rational | None:
        if n.denominator == 1:
            return _q(Fraction(c) ** int(n))  # Fraction: 2 ** -1 must not become a float
        if c < 0:
            return None
        num = _integer_root(c.numerator, n.denominator)
        den = _integer_root(c.denominator, n.denominator)
        if num is None or den is None:
            return None
        return _q(Fraction(num, den) ** n.numerator)

    def call(self, name: str, *args: int) -> int:
        """``name(args)``, folded to an exact constant where the result is rational."""
        values = [self.constant_value(a) for a in args]
        fold = _FOLD.get(name)
        if fold is not None and all(v is not None for v in values):
            folded = fold(*values)
            if folded is not None:
                return self.number(folded)
        return self._single(self._atom(("func", name, args)))

    def substitute(self, expr: int, replacements: dict[str, int]) -> int:
        """``expr`` with each named symbol replaced by an expression (iterative, memoised)."""
        if not replacements:
            return expr
        symbol_atoms = {self._atom_ids[("sym", n, ())]: e for n, e in replacements.items()
                        if ("sym", n, ()) in self._atom_ids}
        memo: dict[int, int] = {}  # poly id -> new poly id
        atom_memo: dict[int, int] = {}  # atom id -> new poly id
        for poly in self._postorder_polys(expr):
            total = self.zero
            for monomial, coefficient in self._polys[poly]:
                term = self.number(coefficient)
                for atom, exponent in monomial:
                    value = atom_memo.get(atom)
                    if value is None:
                        value = atom_memo[atom] = self._replace_atom(atom, symbol_atoms, memo)
                    term = self.mul(term, self.pow(value, self.number(exponent)))
                total = self.add(total, term)
            memo[poly] = total
        return memo[expr]

    def _replace_atom(self, atom: int, symbols: dict[int, int], memo: dict[int, int]) -> int:
        kind, name, operands = self._atoms[atom]
        if kind == "sym":
            return symbols.get(atom, self._single(atom))
        if kind == "group":
            return memo[operands[0]]
        return self.call(name, *(memo[a] for a in operands))

    def _children(self, poly: int) -> list[int]:
        """The polys directly inside a poly's atoms."""
        inner: list[int] = []
        for monomial, _ in self._polys[poly]:
            for atom, _ in monomial:
                inner.extend(self._atoms[atom][2])
        return inner

    def _postorder_polys(self, root: int) -> list[int]:
        order: list[int] = []
        seen: set[int] = set()
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            poly, done = stack.pop()
            if done:
                order.append(poly)
                continue
            if poly in seen:
                continue
            seen.add(poly)
            stack.append((poly, True))
            stack.extend((child, False) for child in self._children(poly) if child not in seen)
        return order

    def symbols(self, expr: int) -> set[str]:
        """The names of the symbols ``expr`` depends on."""
        names = set()
        for poly in self._postorder_polys(expr):
            for monomial, _ in self._polys[poly]:
                for atom, _ in monomial:
                    kind, name, _ = self._atoms[atom]
                    if kind == "sym":
                        names.add(name)
        return names

    def is_plain(self, expr: int) -> bool:
        """True for a polynomial of symbols only (no functions, no groups)."""
        return self._plain[expr]

    def term_count(self, expr: int) -> int:
        return len(self._polys[expr])

    def size(self, expr: int) -> int:
        """Terms and atoms in the expression's graph (each shared part counted once)."""
        return sum(1 + sum(len(m) for m, _ in self._polys[p])
                   for p in self._postorder_polys(expr))

    # --- numbers -----------------------------------------------------------------------

    def evaluate(self, expr: int, values: dict[str, float],
                 functions: dict[str, Callable[..., float]]) -> float:
        """The value of ``expr`` in float64 (``KeyError`` for a symbol without a value;
        ``ValueError``/``ZeroDivisionError``/``OverflowError`` outside a function's domain)."""
        memo: dict[int, float] = {}
        for poly in self._postorder_polys(expr):
            total = 0.0
            for monomial, coefficient in self._polys[poly]:
                term = float(coefficient)
                for atom, exponent in monomial:
                    kind, name, operands = self._atoms[atom]
                    if kind == "sym":
                        base = values[name]
                    elif kind == "group":
                        base = memo[operands[0]]
                    else:
                        base = functions[name](*(memo[a] for a in operands))
                    term *= base if exponent == 1 else math.pow(base, float(exponent))
                total += term
            memo[poly] = total
        return memo[expr]

    # --- text --------------------------------------------------------------------------

    def text(self, expr: int) -> str:
        """``expr`` in gradcalc syntax, written out in full (see :meth:`program`)."""
        printer = _Printer(self)
        for poly in self._postorder_polys(expr):
            printer.visit(poly)
        return printer.expand(expr)

    def program(self, expr: int, bindings: list[tuple[str, int]],
                share_above: int = 40) -> str:
        """``expr`` as program text (statements joined by ``; ``): the ``bindings`` (name,
        expression; each may use the names before it) first, with generated bindings
        ``t1 = ...`` just before their first use for sub-expressions used more than once whose
        text is longer than ``share_above`` characters, and the expression itself last.
        Without bindings of either kind it is a plain expression."""
        roots: list[tuple[str | None, int]] = [*bindings, (None, expr)]
        uses: dict[int, int] = {}
        seen: set[int] = set()
        for _, root in roots:
            for poly in self._postorder_polys(root):
                if poly not in seen:
                    seen.add(poly)
                    for child in set(self._children(poly)):
                        uses[child] = uses.get(child, 0) + 1
        taken = {n for n, _ in bindings}
        for _, root in roots:
            taken |= self.symbols(root)
        counter = 0
        printer = _Printer(self)
        lines: list[str] = []
        for name, root in roots:
            for poly in self._postorder_polys(root):
                if poly in printer.fragments:
                    continue
                printer.visit(poly)
                if uses.get(poly, 0) > 1 and printer.length[poly] > share_above \
                        and poly != root:
                    counter += 1
                    while f"t{counter}" in taken:
                        counter += 1
                    lines.append(f"t{counter} = {printer.expand(poly)}")
                    printer.bind(poly, f"t{counter}")
            text = printer.expand(root)
            lines.append(text if name is None else f"{name} = {text}")
        return "; ".join(lines)


Fragment = str | int  # text, or the id of a poly whose text goes there


class _Printer:
    """Texts of polys as fragment lists that refer to their children, so writing a deeply
    nested expression copies each piece once (no quadratic string building, no recursion)."""

    _KEY_LENGTH = 40  # terms are ordered by at most this much of their text

    def __init__(self, algebra: Algebra) -> None:
        self.algebra = algebra
        self.fragments: dict[int, list[Fragment]] = {}
        self.precedence: dict[int, int] = {}  # 1 sum, 2 product, 3 negative, 8 power, 9 atom
        self.length: dict[int, int] = {}

    def bind(self, poly: int, name: str) -> None:
        """From now on, write ``name`` wherever ``poly`` is used."""
        self.fragments[poly] = [name]
        self.precedence[poly] = 9
        self.length[poly] = len(name)

    def expand(self, poly: int) -> str:
        out: list[str] = []
        stack: list[Fragment] = list(reversed(self.fragments[poly]))
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                out.append(item)
            else:
                stack.extend(reversed(self.fragments[item]))
        return "".join(out)

    def prefix(self, fragments: list[Fragment], limit: int) -> str:
        out: list[str] = []
        size = 0
        stack: list[Fragment] = list(reversed(fragments))
        while stack and size < limit:
            item = stack.pop()
            if isinstance(item, str):
                out.append(item)
                size += len(item)
            else:
                stack.extend(reversed(self.fragments[item]))
        return "".join(out)[:limit]

    def _size(self, fragments: list[Fragment]) -> int:
        return sum(len(f) if isinstance(f, str) else self.length[f] for f in fragments)

    def _atom(self, atom: int) -> tuple[list[Fragment], int]:
        kind, name, operands = self.algebra._atoms[atom]
        if kind == "sym":
            return [name], 9
        if kind == "group":
            return [operands[0]], self.precedence[operands[0]]
        parts: list[Fragment] = [name, "("]
        for index, operand in enumerate(operands):
            if index:
                parts.append(", ")
            parts.append(operand)
        parts.append(")")
        return parts, 9

    def visit(self, poly: int) -> None:
        """Work out the text of ``poly``; its children must have been visited."""
        terms = self.algebra._polys[poly]
        if not terms:
            self.fragments[poly], self.precedence[poly], self.length[poly] = ["0"], 9, 1
            return
        shown: list[tuple[tuple[object, ...], bool, list[Fragment], int]] = []
        for monomial, coefficient in terms:
            numerator: list[list[Fragment]] = []
            denominator: list[list[Fragment]] = []
            order: list[tuple[str, Rational]] = []
            # Factors in the order of their text (A*B, never B*A): the ids they are stored by
            # depend on which was built first.
            factors = sorted(monomial, key=lambda item: (
                self.prefix(self._atom(item[0])[0], self._KEY_LENGTH), item[0]))
            for atom, exponent in factors:
                base, precedence = self._atom(atom)
                power: Rational = exponent if exponent > 0 else -exponent
                # A product inside a product needs no parentheses: a*(b*c) is a*b*c.
                flat = exponent == 1 and precedence == 2
                starts_negative = self.prefix(base, 1) == "-"
                # A power as the base of a power needs them too: ^ is right-associative.
                if not flat and (precedence < 8 or (power != 1 and (precedence < 9
                                                                    or starts_negative))):
                    base = ["(", *base, ")"]
                if power != 1:
                    base = [*base, f"^{_fraction_text(power)}"]
                order.append((self.prefix(base, self._KEY_LENGTH), -exponent))
                (numerator if exponent > 0 else denominator).append(base)
            degree = sum(e for _, e in monomial if e > 0)
            magnitude: Rational = coefficient if coefficient > 0 else -coefficient
            if magnitude.numerator != 1 or not numerator:
                numerator.insert(0, [_integer_text(magnitude.numerator)])
            if magnitude.denominator != 1:
                denominator.insert(0, [_integer_text(magnitude.denominator)])
            text = _joined(numerator, "*")
            if denominator:
                below = _joined(denominator, "*")
                text += ["/(", *below, ")"] if len(denominator) > 1 else ["/", *below]
            is_product = len(numerator) + len(denominator) > 1
            is_power = not is_product and any(e != 1 for _, e in monomial)
            # Highest degree first; within a degree, by the atoms' text (A^2, A*B, B^2);
            # the constant term last.
            shown.append(((-degree, not monomial, sorted(order)), coefficient < 0, text,
                          2 if is_product else 8 if is_power else 9))
        shown.sort(key=lambda item: item[0])
        parts: list[Fragment] = []
        for index, (_, negative, text, _) in enumerate(shown):
            if index == 0:
                parts.extend(["-", *text] if negative else text)
            else:
                parts.extend([" - " if negative else " + ", *text])
        if len(shown) > 1:
            precedence = 1
        elif shown[0][1]:
            precedence = 3  # a negative term: needs parentheses as a factor or a base
        else:
            precedence = shown[0][3]  # 2 a product, 8 a power, 9 an atom
        self.fragments[poly] = parts
        self.precedence[poly] = precedence
        self.length[poly] = self._size(parts)


def _joined(pieces: list[list[Fragment]], separator: str) -> list[Fragment]:
    out: list[Fragment] = []
    for index, piece in enumerate(pieces):
        if index:
            out.append(separator)
        out.extend(piece)
    return out


_CHUNK_DIGITS = 300
_CHUNK = 10**_CHUNK_DIGITS
_FLOAT_RANGE = 10**308  # literals below this parse as finite floats


def _integer_text(n: int) -> str:
    """An exact integer as program text. Beyond float range a literal would not parse (and
    beyond 4,300 digits Python will not even print it), so big ones are written in chunks:
    ``(c2*10^600 + c1*10^300 + c0)``."""
    if n < _FLOAT_RANGE:
        return str(n)
    parts, power = [], 0
    while n:
        n, chunk = divmod(n, _CHUNK)
        if chunk:
            parts.append(str(chunk) if power == 0 else f"{chunk}*10^{power}")
        power += _CHUNK_DIGITS
    return "(" + " + ".join(reversed(parts)) + ")"


def _fraction_text(value: Rational) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"({value.numerator}/{value.denominator})"


def _integer_root(n: int, k: int) -> int | None:
    if n < 0:
        return None
    root = round(n ** (1.0 / k)) if n < 2**1000 else int(math.exp(math.log(n) / k))
    for candidate in (root - 1, root, root + 1):
        if candidate >= 0 and candidate**k == n:
            return candidate
    return None


def _distributes(monomial: tuple[tuple[int, Rational], ...], n: Rational) -> bool:
    """Whether ``(c * x^e * ...)^n`` may be written ``c^n * x^(e*n) * ...`` for every real value
    where both sides are defined. An integer power always distributes. A fractional one does
    not over several factors (``(x*y)^(1/2)`` is defined for x, y < 0, ``x^(1/2)*y^(1/2)`` is
    not) nor over an even integer power (``(x^2)^(1/2)`` is ``abs(x)``, not ``x``)."""
    if n.denominator == 1:
        return True
    if len(monomial) > 1:
        return False
    return all(not (e.denominator == 1 and e.numerator % 2 == 0) for _, e in monomial)
