"""A small computer algebra for gradients: canonical expressions with exact rational coefficients.

An expression is a *polynomial*: a sum of terms, each an exact :class:`~fractions.Fraction`
times a product of *atoms* raised to rational powers. Atoms are symbols (``A``, ``pi``),
function applications (``sin(...)``, ``pow(A, B)``) and groups (a sum kept whole, e.g. under a
negative power: ``1/(A + 1)``). Every polynomial and atom is interned under an integer id, so
equal expressions are the same id, sharing is free, and hashing never recurses however deeply
expressions nest. Building an expression simplifies it: constants fold, ``x*1``, ``x+0``,
``x*0``, ``--x``, ``x^1`` vanish, like terms collect, powers of one base merge, and sums of
symbols multiply out (up to a size limit); functions stay as they are.

The arithmetic is bounded, so that no input can make it hang or exhaust memory: no rational
whose numerator or denominator has more than :data:`MAX_BITS` bits is kept in an expression.
A power whose exact value would be larger stays unevaluated (``pow(3, 10000000)``,
``(2*A)^1000000000``); where no bounded form exists (a sum or product of huge constants, a
number given too large) :class:`ConstantTooLarge` is raised. The number of interned
expressions is bounded too (the ``budget``; :class:`ExpressionTooLarge`).

Printing (:meth:`Algebra.text`) gives gradcalc syntax, so every formula can be parsed again;
:meth:`Algebra.program` binds shared sub-expressions to names so that the text grows with the
expression's graph, not with the number of paths through it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Container, Iterable
from fractions import Fraction

from gradcalc.names import fresh
from gradcalc.ops import FUNCTIONS, Precedence, Rational

__all__ = ["DEFAULT_BUDGET", "MAX_BITS", "Algebra", "ConstantTooLarge", "ExpressionTooLarge"]

#: The most bits the numerator or the denominator of an exact number may have. A power whose
#: exact value would need more is kept unevaluated; a sum or product that would need more
#: raises :class:`ConstantTooLarge`. (Intermediate results are at most a few times this: the
#: sum or product of two bounded numbers, checked before it is kept.)
MAX_BITS = 10_000

#: The total size of the interned expressions an :class:`Algebra` may hold unless told
#: otherwise, in parts: a polynomial counts one part per term and one per factor of each term,
#: an atom one part and one per operand. Beyond it, :class:`ExpressionTooLarge`. Memory is
#: about 60 bytes a part, so the default bounds an algebra at a few hundred MB (counting
#: expressions alone did not: 8,000 adjoints of a chain, each a product of thousands of
#: factors, took 1.7 GB).
DEFAULT_BUDGET = 4_000_000

# Rationals (ops.Rational) are ints where integral: Fraction hashing costs microseconds, and
# every monomial and every coefficient is hashed each time an expression is interned.
Monomial = tuple[tuple[int, Rational], ...]  # (atom id, exponent), sorted by atom id
Terms = tuple[tuple[Monomial, Rational], ...]  # sorted by monomial
AtomKey = tuple[str, str, tuple[int, ...]]

# Multiplying out stops here: a product whose expansion would have more terms keeps its
# factors as groups, e.g. (A + B)^50 stays a power.
_EXPAND_LIMIT = 64

# A sum with more terms than this is not multiplied out even by a number: c*(sum) stays a
# product, so that an adjoint scaled at every step of a chain (X_i = X_(i-1)/2 + ...) is
# shared, not copied term by term (quadratic text).
_DISTRIBUTE_LIMIT = 8

# A product with more factors than this is kept whole when multiplied further (_compact).
_FLAT_ATOMS = 8

ZERO: Rational = 0
ONE: Rational = 1


def _q(x: Rational) -> Rational:
    """An integral rational as an int (hashes and compares fast), others as a Fraction."""
    return x.numerator if x.denominator == 1 else x

def _fits(x: Rational) -> bool:
    """Whether ``x`` is within :data:`MAX_BITS` (numerator and denominator)."""
    if isinstance(x, int):
        return x.bit_length() <= MAX_BITS
    return x.numerator.bit_length() <= MAX_BITS and x.denominator.bit_length() <= MAX_BITS


def _bits(x: Rational) -> int:
    return max(x.numerator.bit_length(), x.denominator.bit_length())


class ExpressionTooLarge(Exception):
    """An expression outgrew the limits a readable formula can have."""


class ConstantTooLarge(ArithmeticError):
    """An exact number would need more than :data:`MAX_BITS` bits and has no bounded
    unevaluated form (a too large number given, a sum or product of huge constants)."""


def _too_large(what: str, bits: int) -> ConstantTooLarge:
    return ConstantTooLarge(f"{what} needs more than {MAX_BITS:,} bits to be exact "
                            f"({bits:,} bits)")


class Algebra:
    """Interned canonical expressions. Expressions are integer ids; build them with
    :meth:`number`, :meth:`symbol`, :meth:`add`, :meth:`mul`, :meth:`pow`, :meth:`call`...

    ``budget`` bounds the total size of the interned expressions (polynomials and atoms, every
    intermediate one included, in parts: see :data:`DEFAULT_BUDGET`, the bound when
    ``None``). Building past it raises :class:`ExpressionTooLarge`, as does building past
    ``deadline`` (a :func:`time.monotonic` time), checked every 1,024 new expressions.
    Exact numbers are bounded by :data:`MAX_BITS` (:class:`ConstantTooLarge`)."""

    def __init__(self, budget: int | None = None, deadline: float | None = None) -> None:
        self._budget = DEFAULT_BUDGET if budget is None else budget
        if self._budget < 2:
            raise ValueError("an algebra needs a budget of at least 2 (for 0 and 1)")
        self._deadline = deadline
        self._count = 0  # parts of the polys and atoms interned
        self._built = 0  # polys and atoms interned
        self._polys: list[Terms] = []
        self._poly_ids: dict[Terms, int] = {}
        # An atom: (kind, name, operands): ("sym", "A", ()), ("func", "sin", (poly,)),
        # ("group", "", (poly,)).
        self._atoms: list[AtomKey] = []
        self._atom_ids: dict[AtomKey, int] = {}
        self._plain: list[bool] = []  # poly made of symbols only (safe to multiply out)
        self._symbols: dict[int, frozenset[str]] = {}
        self._symbols_seen: set[int] = set()
        self.zero = self._poly(())
        self.one = self._poly((((), ONE),))

    # --- construction ------------------------------------------------------------------

    def _poly(self, terms: Terms) -> int:
        found = self._poly_ids.get(terms)
        if found is None:
            self._grow(len(terms) + sum(len(monomial) for monomial, _ in terms))
            plain = True
            for monomial, coefficient in terms:
                if not _fits(coefficient):
                    raise _too_large("a coefficient", _bits(coefficient))
                for atom, exponent in monomial:
                    if not _fits(exponent):
                        raise _too_large("an exponent", _bits(exponent))
                    plain = plain and self._atoms[atom][0] == "sym"
            found = self._poly_ids[terms] = len(self._polys)
            self._polys.append(terms)
            self._plain.append(plain)
        return found

    def _atom(self, key: AtomKey) -> int:
        found = self._atom_ids.get(key)
        if found is None:
            self._grow(1 + len(key[2]))
            found = self._atom_ids[key] = len(self._atoms)
            self._atoms.append(key)
        return found

    def _grow(self, parts: int) -> None:
        """Count one more interned expression of ``parts`` parts, within the budget (and,
        every 1,024 expressions, check the deadline)."""
        if self._count + parts > self._budget:
            raise ExpressionTooLarge(
                f"the expressions grew past {self._budget:,} parts ({len(self._polys):,} "
                f"sums and products, {len(self._atoms):,} symbols, functions and groups)")
        self._count += parts
        self._built += 1
        if self._deadline is not None and not self._built & 1023 and \
                time.monotonic() > self._deadline:
            raise ExpressionTooLarge(
                f"building them took too long ({self._count:,} parts built so far)")

    def check_time(self) -> None:
        """Raise :class:`ExpressionTooLarge` when the deadline has passed: for work that
        reads expressions without building new ones (substituting, collecting symbols)."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise ExpressionTooLarge(
                f"working on them took too long ({self._count:,} parts built so far)")

    def _from(self, terms: dict[Monomial, Rational]) -> int:
        return self._poly(tuple(sorted((m, _q(c)) for m, c in terms.items() if c != 0)))

    def number(self, value: Rational) -> int:
        """The constant ``value`` (:class:`ConstantTooLarge` beyond :data:`MAX_BITS`)."""
        value = _q(Fraction(value))
        if not _fits(value):
            raise _too_large("a number", _bits(value))
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
                total[monomial] = summed = total.get(monomial, ZERO) + coefficient
                # Many summands could grow a coefficient far past the bound before _poly
                # sees it (1/3 + 1/7 + 1/11 + ...); two cannot.
                if len(exprs) > 2 and not _fits(summed):
                    raise _too_large("a coefficient", _bits(summed))
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
            inner = self._bare_sum(reduced)
            if inner is None:
                rest[reduced] = rest.get(reduced, ZERO) + coefficient
                continue
            # a term that is a sum kept whole joins the others: (A - B) + A is 2*A - B
            for term, factor in self._polys[inner]:
                rest[term] = rest.get(term, ZERO) + coefficient * factor
        remainder = self._from(rest)
        return self._product([*common.items(), (self._group_atom(remainder), ONE)], ONE)

    def _bare_sum(self, monomial: Monomial) -> int | None:
        """The sum inside ``monomial`` when it is just one group of a sum, to the first power
        (``(A - B)``); else None."""
        if len(monomial) != 1 or monomial[0][1] != 1:
            return None
        kind, _, operands = self._atoms[monomial[0][0]]
        if kind != "group" or len(self._polys[operands[0]]) < 2:
            return None
        return operands[0]

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
        if len(pa) > 1 and len(pb) == 1 and (
                len(pa) > _DISTRIBUTE_LIMIT or (not self._plain[a] and not self._is_number(b))):
            return self._product([(self._group_atom(a), ONE), *pb[0][0]], pb[0][1])
        if len(pb) > 1 and len(pa) == 1 and (
                len(pb) > _DISTRIBUTE_LIMIT or (not self._plain[b] and not self._is_number(a))):
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
            if _distributes(monomial, n):
                exponents = [(a, _q(e * n)) for a, e in monomial]
                scaled = _rational_power(coefficient, n)
                if scaled is not None and all(_fits(e) for _, e in exponents):
                    return self._product(exponents, scaled)
            if not monomial:
                # No exact value within the bound (or none at all): pow(3, 1/2) as it is.
                return self.call("pow", base, exponent)
            # A coefficient without an exact (or small enough) power: keep it inside.
            return self._product([(self._atom(("group", "", (base,))), n)], ONE)
        # The exponent is checked first: len(terms) ** n for a huge n would never finish.
        if n.denominator == 1 and 0 < n <= _EXPAND_LIMIT and self._plain[base] and \
                len(terms) ** n.numerator <= _EXPAND_LIMIT:
            result = self.one
            for _ in range(n.numerator):
                result = self.mul(result, base)
            return result
        return self._product([(self._atom(("group", "", (base,))), n)], ONE)

    def call(self, name: str, *args: int) -> int:
        """``name(args)``, folded to an exact constant where the result is rational (the
        registry's ``Op.exact``: ``sin(0)`` is 0, ``log2(8)`` is 3)."""
        values = [self.constant_value(a) for a in args]
        op = FUNCTIONS.get(name)
        fold = op.exact if op is not None else None
        if fold is not None and all(v is not None for v in values):
            folded = fold(*values)
            if folded is not None:
                return self.number(folded)
        return self._single(self._atom(("func", name, args)))

    def substitute(self, expr: int, replacements: dict[str, int],
                   memo: dict[int, int] | None = None) -> int:
        """``expr`` with each named symbol replaced by an expression (iterative). Parts that
        use none of the names are kept as they are, not rebuilt. ``memo`` (poly -> result)
        may be shared by calls with the same replacements (a replacement may be added for a
        name none of the earlier expressions used), so many expressions that share parts
        are substituted in time linear in their union."""
        if not replacements:
            return expr
        if memo is None:
            memo = {}
        names = replacements.keys()
        symbol_atoms = {self._atom_ids[("sym", n, ())]: e for n, e in replacements.items()
                        if ("sym", n, ()) in self._atom_ids}
        self.symbols(expr)  # every poly under expr gets its names remembered
        order = self._postorder_polys(expr, skip=_Kept(memo, self._symbols, names))
        atom_memo: dict[int, int] = {}  # atom id -> new poly id
        for poly in order:
            terms = []
            for monomial, coefficient in self._polys[poly]:
                term = self.number(coefficient)
                for atom, exponent in monomial:
                    value = atom_memo.get(atom)
                    if value is None:
                        value = atom_memo[atom] = self._replace_atom(atom, symbol_atoms, memo)
                    term = self.mul(term, self.pow(value, self.number(exponent)))
                terms.append(term)
            memo[poly] = self.add(*terms)  # at once: term by term would be quadratic
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

    def _postorder_polys(self, root: int, seen: set[int] | None = None,
                         skip: Container[int] = ()) -> list[int]:
        """The polys under ``root`` (itself included), operands first. With ``seen``, polys
        already in it are neither listed nor descended into, and the listed ones are added:
        walking many roots that share parts costs their union, not the sum of their sizes.
        Polys in ``skip`` are neither listed nor descended into either."""
        order: list[int] = []
        if seen is None:
            seen = set()
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            poly, done = stack.pop()
            if done:
                order.append(poly)
                continue
            if poly in seen or poly in skip:
                continue
            seen.add(poly)
            stack.append((poly, True))
            stack.extend((child, False) for child in self._children(poly)
                         if child not in seen and child not in skip)
        return order

    def symbols(self, expr: int) -> set[str]:
        """The names of the symbols ``expr`` depends on (remembered per expression, so asking
        for many expressions that share parts walks each part once)."""
        memo = self._symbols
        if expr not in memo:
            for poly in self._postorder_polys(expr, self._symbols_seen):
                names: set[str] = set()
                for monomial, _ in self._polys[poly]:
                    for atom, _ in monomial:
                        kind, name, operands = self._atoms[atom]
                        if kind == "sym":
                            names.add(name)
                        else:
                            for operand in operands:
                                names |= memo[operand]
                # remembered sets are memory too: n adjoints of a chain hold n^2/2 names
                self._grow(len(names))
                memo[poly] = frozenset(names)
        return set(memo[expr])

    def symbol_uses(self, roots: Iterable[int], names: Iterable[str]) -> dict[str, int]:
        """How many times each of ``names`` is written in ``roots`` written out in full (the
        paths from the roots to its occurrences), counted up to 2 (``0``, ``1``, or "more"),
        without writing any text: a pass down the graph of parts, parents first."""
        roots = list(roots)
        atoms = {self._atom_ids[("sym", n, ())]: n for n in names
                 if ("sym", n, ()) in self._atom_ids}
        order: list[int] = []
        seen: set[int] = set()
        for root in roots:
            order.extend(self._postorder_polys(root, seen))
        # which atoms (operations, groups) use each part, once per use
        users: dict[int, list[int]] = {}
        containing: dict[int, list[int]] = {}  # atom -> the parts whose terms hold it
        for poly in order:
            for monomial, _ in self._polys[poly]:
                for atom, _ in monomial:
                    containing.setdefault(atom, []).append(poly)
        for atom in containing:
            for operand in self._atoms[atom][2]:
                users.setdefault(operand, []).append(atom)
        paths: dict[int, int] = {}
        for root in roots:
            paths[root] = min(2, paths.get(root, 0) + 1)
        atom_paths: dict[int, int] = {}
        counts = dict.fromkeys(names, 0)
        for poly in reversed(order):  # every part after all the parts that use it
            here = min(2, paths.get(poly, 0) + sum(atom_paths[a] for a in users.get(poly, ())))
            paths[poly] = here
            for monomial, _ in self._polys[poly]:
                for atom, _ in monomial:
                    atom_paths[atom] = min(2, atom_paths.get(atom, 0) + here)
                    name = atoms.get(atom)
                    if name is not None:
                        counts[name] = min(2, counts[name] + here)
        return counts

    # --- parts, for rewriting passes (gradcalc.tidy) ----------------------------------------

    @property
    def parts(self) -> int:
        """The parts interned so far (what the ``budget`` counts)."""
        return self._count

    def terms(self, expr: int) -> Terms:
        """The terms of ``expr``: (monomial, coefficient) pairs, each monomial a sorted tuple
        of (atom, exponent)."""
        return self._polys[expr]

    def atom_key(self, atom: int) -> AtomKey:
        """What ``atom`` is: ``("sym", name, ())``, ``("func", name, operands)`` or
        ``("group", "", (sum,))``."""
        return self._atoms[atom]

    def atom_inner(self, atom: int) -> int:
        """The sum inside a group atom."""
        return self._atoms[atom][2][0]

    def single(self, atom: int) -> int:
        """The expression that is just ``atom``."""
        return self._single(atom)

    def as_atom(self, expr: int) -> int:
        """``expr`` as one atom: itself where it is one, else a group of it."""
        return self._group_atom(expr)

    def from_terms(self, terms: dict[Monomial, Rational]) -> int:
        """The expression with exactly these terms (sorted, zeros dropped), nothing else
        simplified: rewriting passes choose their own form."""
        return self._from(terms)

    def children(self, poly: int) -> list[int]:
        """The polys directly inside ``poly``'s atoms (one entry per use)."""
        return self._children(poly)

    def postorder(self, expr: int, skip: Container[int] = ()) -> list[int]:
        """The polys under ``expr`` (itself included), operands first, each once; polys in
        ``skip`` are neither listed nor walked into."""
        return self._postorder_polys(expr, skip=skip)

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
                 functions: dict[str, Callable[..., float]],
                 memo: dict[int, float] | None = None) -> float:
        """The value of ``expr`` in float64 (``KeyError`` for a symbol without a value;
        ``ValueError``/``ZeroDivisionError``/``OverflowError`` outside a function's domain).
        ``memo`` keeps the values of the polys worked out, for further calls with the same
        ``values`` (evaluating many expressions that share parts)."""
        if memo is None:
            memo = {}
        if expr in memo:
            return memo[expr]
        for poly in self._postorder_polys(expr, skip=memo):
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
        return "; ".join(text if name is None else f"{name} = {text}"
                         for name, text in self.program_parts(bindings, [expr], share_above))

    def program_parts(self, bindings: list[tuple[str, int]], exprs: list[int],
                      share_above: int = 40, reserved: Iterable[str] = ()
                      ) -> list[tuple[str | None, str]]:
        """The statements of :meth:`program` for several expressions at once, as (name,
        text) pairs in order: the ``bindings``, generated ``t1 = ...`` statements for
        sub-expressions used more than once (across all of them) with text longer than
        ``share_above`` characters, each just before its first use, and each of ``exprs``
        as ``(None, text)``, in the order given. Generated names avoid ``reserved`` (the
        program's own names) as well as every name used."""
        roots: list[tuple[str | None, int]] = [*bindings, *((None, e) for e in exprs)]
        uses: dict[int, int] = {}
        seen: set[int] = set()
        for _, root in roots:
            for poly in self._postorder_polys(root, seen):
                for child in set(self._children(poly)):
                    uses[child] = uses.get(child, 0) + 1
        taken = {n for n, _ in bindings} | set(reserved)
        for _, root in roots:
            taken |= self.symbols(root)
        names = fresh(taken, "t")
        printer = _Printer(self)
        lines: list[tuple[str | None, str]] = []
        printed: set[int] = set()
        for name, root in roots:
            for poly in self._postorder_polys(root, printed):
                printer.visit(poly)
                if uses.get(poly, 0) > 1 and printer.length[poly] > share_above \
                        and poly != root:
                    tag = next(names)
                    lines.append((tag, printer.expand(poly)))
                    printer.bind(poly, tag)
            lines.append((name, printer.expand(root)))
        return lines


class _Kept:
    """What :meth:`Algebra.substitute` need not walk into: polys already substituted, and
    polys that use none of the names (recorded in ``memo`` as kept unchanged on the way)."""

    __slots__ = ("memo", "names", "uses")

    def __init__(self, memo: dict[int, int], uses: dict[int, frozenset[str]],
                 names: Iterable[str]) -> None:
        self.memo, self.uses, self.names = memo, uses, names

    def __contains__(self, poly: object) -> bool:
        assert isinstance(poly, int)
        if poly in self.memo:
            return True
        if self.uses[poly].isdisjoint(self.names):
            self.memo[poly] = poly
            return True
        return False


Fragment = str | int  # text, or the id of a poly whose text goes there


class _Printer:
    """Texts of polys as fragment lists that refer to their children, so writing a deeply
    nested expression copies each piece once (no quadratic string building, no recursion)."""

    _KEY_LENGTH = 40  # terms are ordered by at most this much of their text

    def __init__(self, algebra: Algebra) -> None:
        self.algebra = algebra
        self.fragments: dict[int, list[Fragment]] = {}
        # ops.Precedence: SUM, PRODUCT, UNARY (a negative term), POWER or ATOM
        self.precedence: dict[int, int] = {}
        self.length: dict[int, int] = {}

    def bind(self, poly: int, name: str) -> None:
        """From now on, write ``name`` wherever ``poly`` is used."""
        self.fragments[poly] = [name]
        self.precedence[poly] = Precedence.ATOM
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
            return [name], Precedence.ATOM
        if kind == "group":
            return [operands[0]], self.precedence[operands[0]]
        if name == "pow":
            return self._power(*operands), Precedence.POWER
        parts: list[Fragment] = [name, "("]
        for index, operand in enumerate(operands):
            if index:
                parts.append(", ")
            parts.append(operand)
        parts.append(")")
        return parts, Precedence.ATOM

    def _power(self, base: int, exponent: int) -> list[Fragment]:
        """``pow(a, b)`` as ``a^b``: the base in parentheses unless it is an atom (``^`` binds
        tighter than a sign, and is right-associative), the exponent unless it is an atom or
        a power (``x^y^z`` is ``x^(y^z)``)."""
        below: list[Fragment] = [base]
        if self.precedence[base] < Precedence.ATOM or self.prefix([base], 1) == "-":
            below = ["(", base, ")"]
        above: list[Fragment] = [exponent]
        if self.precedence[exponent] < Precedence.POWER or self.prefix([exponent], 1) == "-":
            above = ["(", exponent, ")"]
        return [*below, "^", *above]

    def visit(self, poly: int) -> None:
        """Work out the text of ``poly``; its children must have been visited."""
        terms = self.algebra._polys[poly]
        if not terms:
            self.fragments[poly], self.length[poly] = ["0"], 1
            self.precedence[poly] = Precedence.ATOM
            return
        shown = [self._term(monomial, coefficient) for monomial, coefficient in terms]
        shown.sort(key=lambda item: item[0])
        if shown[0][1]:  # a leading positive term reads better: 1 - P, not -P + 1
            first = next((i for i, item in enumerate(shown) if not item[1]), 0)
            shown.insert(0, shown.pop(first))
        parts: list[Fragment] = []
        for index, (_, negative, text, _) in enumerate(shown):
            if index == 0:
                parts.extend(["-", *text] if negative else text)
            else:
                parts.extend([" - " if negative else " + ", *text])
        if len(shown) > 1:
            precedence = Precedence.SUM
        elif shown[0][1]:
            precedence = Precedence.UNARY  # a negative term: parenthesised as a factor or base
        else:
            precedence = shown[0][3]  # a product, a power or an atom
        self.fragments[poly] = parts
        self.precedence[poly] = precedence
        self.length[poly] = self._size(parts)

    def _term(self, monomial: Monomial, coefficient: Rational
              ) -> tuple[tuple[object, ...], bool, list[Fragment], int]:
        """One term of a sum: its sort key, whether it is negative, the text of its magnitude
        (``3*A^2/B``) and that text's precedence."""
        numerator: list[list[Fragment]] = []
        denominator: list[list[Fragment]] = []
        order: list[tuple[str, Rational]] = []
        # Factors in the order of their text (A*B, never B*A): the ids they are stored by
        # depend on which was built first.
        factors = sorted(monomial, key=lambda item: (
            self.prefix(self._atom(item[0])[0], self._KEY_LENGTH), item[0]))
        for atom, exponent in factors:
            base = self._factor(atom, exponent)
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
        is_power = not is_product and any(
            e != 1 or self._atom(a)[1] == Precedence.POWER for a, e in monomial)
        # Highest degree first; within a degree, by the atoms' text (A^2, A*B, B^2);
        # the constant term last.
        return ((-degree, not monomial, sorted(order)), coefficient < 0, text,
                Precedence.PRODUCT if is_product
                else Precedence.POWER if is_power else Precedence.ATOM)

    def _factor(self, atom: int, exponent: Rational) -> list[Fragment]:
        """The text of ``atom`` raised to ``|exponent|``, parenthesised as a factor needs."""
        base, precedence = self._atom(atom)
        power: Rational = exponent if exponent > 0 else -exponent
        # A product inside a product needs no parentheses: a*(b*c) is a*b*c.
        flat = exponent == 1 and precedence == Precedence.PRODUCT
        starts_negative = self.prefix(base, 1) == "-"
        # A power as the base of a power needs them too: ^ is right-associative.
        if not flat and (precedence < Precedence.POWER or (
                power != 1 and (precedence < Precedence.ATOM or starts_negative))):
            base = ["(", *base, ")"]
        if power != 1:
            base = [*base, f"^{_fraction_text(power)}"]
        return base


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
    """An exponent as program text: ``3``, ``(1/3)``, big parts in chunks (_integer_text)."""
    magnitude = -value if value < 0 else value
    text = _integer_text(magnitude.numerator)
    if magnitude.denominator != 1:
        text = f"({text}/{_integer_text(magnitude.denominator)})"
    return f"(-{text})" if value < 0 else text


def _rational_power(c: Rational, n: Rational) -> Rational | None:
    """``c^n`` exactly, or ``None`` where it is irrational or would exceed :data:`MAX_BITS`."""
    if n.denominator == 1:
        return _integer_power(c, n.numerator)
    if c < 0:
        return None
    num = _integer_root(c.numerator, n.denominator)
    den = _integer_root(c.denominator, n.denominator)
    if num is None or den is None:
        return None
    return _integer_power(_q(Fraction(num, den)), n.numerator)


def _integer_power(c: Rational, p: int) -> Rational | None:
    """``c^p``, or ``None`` where it would need more than :data:`MAX_BITS` bits (decided
    before anything is computed)."""
    if c.denominator == 1 and c.numerator in (1, -1):
        return c if p % 2 else ONE  # any power of 1 or -1, however large p is
    # The larger of |numerator| and denominator, m >= 2, decides: m^|p| has
    # floor(|p|*log2(m)) + 1 bits. Beyond MAX_BITS for |p| > MAX_BITS already (and float(p)
    # would overflow); otherwise the float product is exact to ~1e-11, and the margin covers it.
    m = max(abs(c.numerator), c.denominator)
    if abs(p) > MAX_BITS or abs(p) * math.log2(m) > MAX_BITS - 1e-6:
        return None
    return _q(Fraction(c) ** p)  # Fraction: 2 ** -1 must not become a float


def _integer_root(n: int, k: int) -> int | None:
    """The integer ``k``-th root of ``n`` if ``n`` is a perfect ``k``-th power, else ``None``.
    Exact integer arithmetic; only the starting guess comes from a float, the logarithm of
    ``n``, which cannot overflow (a float of ``n`` or of its root could)."""
    if n < 0:
        return None
    if n < 2 or k == 1:
        return n
    bits = n.bit_length()
    if k >= bits:
        return None  # a root r >= 2 would make n >= 2^k, more than k bits have room for
    # A start a little above the root: 2^(log2(n)/k) to ~1e-12 (math.log2 takes any int),
    # the last 40 bits from the float and the rest a shift. Newton's method on integers
    # then decreases to the floor of the root in a few steps.
    exponent = math.log2(n) / k
    shift = max(0, int(exponent) - 40)
    x = (int(2.0 ** (exponent - shift) * (1 + 2.0**-20)) + 2) << shift
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    return x if x**k == n else None


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
