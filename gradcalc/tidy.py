"""Formulas a person would write: a finished expression rewritten into a shorter equal one.

The algebra (:mod:`gradcalc.algebra`) builds gradients in a canonical, multiplied-out form,
which is what makes equal terms cancel while they are built. This pass runs once on each
finished formula and writes it as a person would, part by part, operands first:

* **common factors** come out of a sum: ``P - P^2`` is ``P*(1 - P)``, ``A/B + C/B`` is
  ``(A + C)/B``;
* **products of sums** are found again: a polynomial is divided by the sums the program
  itself is made of (``(x + y)``, ``(x - y)``) and split where the terms of one variable are
  multiples of one sum (``H^2*P - H^2 - P + 1`` is ``(1 - H^2)*(1 - P)``);
* **fractions** in a sum go over a common denominator, and factors of a product cancel:
  the logistic loss's ``(1/(1 - P) - Y/(1 - P) - Y/P)*P*(1 - P)*X`` is ``(P - Y)*X``;
* ``pow(x, x - 1)*x`` is ``pow(x, x)``, ``sqrt(u)^2`` is ``u``, ``exp(log(u))`` and
  ``log(exp(u))`` are ``u``.

Every rewrite holds for all real values where both sides are defined, and a rewrite is kept
only when it makes the text shorter (by the estimate :meth:`Tidy.length`). The work on each
part is bounded (the limits below), and each part is rewritten once however many formulas
share it, so the pass is linear in the size of the formulas' graph.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from gradcalc.algebra import Algebra, ConstantTooLarge, Monomial
from gradcalc.ops import Rational

__all__ = ["Tidy", "TooMuchWork"]

# A sum is factored, or put over a common denominator, only up to this many terms (and the
# numerator of a common denominator, multiplied out, up to as many).
_TERMS = 64
# At most this many known sums are tried as divisors of one polynomial.
_DIVISORS = 24
# A polynomial is split into at most this many factors.
_FACTORS = 12
# A product is chosen over a sum up to this many characters longer.
_PRODUCT_BONUS = 3
# A sum is tried as its constant plus a product of the others up to this many terms.
_ONE_OUT = 16
# A product of more factors than this stays one factor of the products it is used in (shared,
# not copied into each: a chain's adjoints would grow quadratic text).
_FLAT = 8

Poly = dict[Monomial, Rational]

# f(g(u)) is u for these pairs, wherever the left side is defined
_INVERSES = {"exp": "log", "log": "exp"}


class TooMuchWork(Exception):
    """The rewriting built more than its ``budget`` of parts: keep the formulas as they were."""


class Tidy:
    """Rewrites expressions of ``algebra`` (:meth:`__call__`); :meth:`know` gives it sums to
    try as factors (the program's own sub-expressions). Building more than ``budget`` parts
    (:attr:`Algebra.parts`) raises :class:`TooMuchWork`. Parts rewritten once are remembered, so
    one :class:`Tidy` should serve all the formulas of one result."""

    def __init__(self, algebra: Algebra, budget: int | None = None) -> None:
        self.X = algebra
        self.limit = None if budget is None else algebra.parts + budget
        # parts used in more than one place (and their rewritten forms): never copied into
        # the parts that use them, or the text would lose its sharing (see count)
        self.uses: dict[int, int] = {}
        self.shared: set[int] = set()
        self.done: dict[int, int] = {}  # poly -> its rewritten form
        self.lengths: dict[int, int] = {}
        # sums kept as sums that are also products (their factored forms), for cancelling
        self.products: dict[int, list[int]] = {}
        # the known sums, by their first atom (a polynomial's candidates are found by its
        # atoms, not by scanning them all: a long program has thousands)
        self.divisors: dict[int, list[tuple[Poly, frozenset[int]]]] = {}

    def know(self, sums: Iterable[int]) -> None:
        """Try ``sums`` as factors of the polynomials met (small ones, by their primitive
        part)."""
        seen: set[int] = set()
        for expr in sums:
            if expr not in seen and 2 <= self.X.term_count(expr) <= _TERMS // 4:
                seen.add(expr)
                poly = dict(self.X.terms(expr))
                if _polynomial(poly):
                    # its primitive part: B*N0 + N0*A divides what (A + B) divides
                    poly = _content(poly, True)[2]
                    atoms = frozenset(_atoms(poly))
                    self.divisors.setdefault(min(atoms), []).append((poly, atoms))

    def count(self, roots: Iterable[int]) -> int:
        """Count the uses of every part under ``roots`` (all the expressions to be rewritten,
        before the first is): a part used in two places is shared, and a rewrite that would
        copy its terms into another part is not made. Returns the number of parts."""
        seen: set[int] = set()
        for root in roots:
            for poly in self.X.postorder(root, skip=seen):
                seen.add(poly)
                for child in set(self.X.children(poly)):
                    self.uses[child] = self.uses.get(child, 0) + 1
        return len(seen)

    def _share(self, rewritten: int) -> None:
        """Mark a shared part's new form, and the sums it is a product of (``c*(R)``: R is
        the shared sum now), as not to be copied."""
        X = self.X
        self.shared.add(rewritten)
        terms = X.terms(rewritten)
        if len(terms) == 1:
            self.shared.update(X.atom_inner(a) for a, _ in terms[0][0]
                               if X.atom_key(a)[0] == "group")

    def __call__(self, expr: int) -> int:
        """``expr`` written as a person would: an equal expression, never longer but for the
        near tie a product is given (:data:`_PRODUCT_BONUS` characters)."""
        X = self.X
        for poly in X.postorder(expr, skip=self.done):
            if self.limit is not None and X.parts > self.limit:
                raise TooMuchWork
            self.done[poly] = rewritten = self._rewrite(poly)
            if self.uses.get(poly, 0) > 1:
                self._share(rewritten)
        return self.done[expr]

    # --- one part ----------------------------------------------------------------------

    def _rewrite(self, poly: int) -> int:
        X = self.X
        terms: Poly = {}
        for monomial, coefficient in X.terms(poly):
            term = self._term(monomial, coefficient)
            if term is None:
                return poly  # an exact number beyond the bound: keep the part as it was
            factors, scaled = term
            terms[factors] = terms.get(factors, 0) + scaled
        terms = {m: _q(c) for m, c in self._joined(terms).items() if c != 0}
        as_is = best = X.from_terms(terms)
        if 2 <= len(terms) <= _TERMS:
            products = []
            for candidate in self._candidates(terms):
                product = X.term_count(candidate) == 1
                if product:
                    products.append(candidate)
                # a product wins a near tie: P*(1 - P), not P - P^2 (the chain rule's form)
                if self.length(candidate) - _PRODUCT_BONUS * product < self.length(best):
                    best = candidate
            if X.term_count(best) > 1 and best != as_is:
                # what collecting left may have a factor in common: a*x*y - a*x*z + a*w*y
                # collected by y is a*(x + w)*y - a*x*z, and that is a*((x + w)*y - x*z)
                again = self._factored(dict(X.terms(best)))
                if again is not None and self.length(again) < self.length(best):
                    best = again
            if products and X.term_count(best) > 1:
                self.products[poly] = products
        return self._signed(best) if X.term_count(best) == 1 else best

    def _joined(self, terms: Poly) -> Poly:
        """``terms`` with a term that is a bare sum written as its terms: what is left of
        ``(A + C)*G + A*G`` once ``G`` is taken out is ``(A + C) + A``, that is ``2*A + C``."""
        if not any(self._bare_sum(m) is not None for m in terms):
            return terms
        out: Poly = {}
        for monomial, coefficient in terms.items():
            inner = self._bare_sum(monomial)
            for m, c in ((monomial, 1),) if inner is None else self.X.terms(inner):
                out[m] = out.get(m, 0) + coefficient * c
        return {m: _q(c) for m, c in out.items() if c != 0}

    def _bare_sum(self, monomial: Monomial) -> int | None:
        """The sum a term is, when it is just a sum (``sqrt(u)^2`` became ``u``), to join
        the terms around it: ``(A^2 + 1) + 1`` is ``A^2 + 2``."""
        if len(monomial) == 1 and monomial[0][1] == 1 and \
                self.X.atom_key(monomial[0][0])[0] == "group":
            inner = self.X.atom_inner(monomial[0][0])
            return None if inner in self.shared else inner
        return None

    def _candidates(self, terms: Poly) -> Iterable[int]:
        """The other forms of a sum: factored, over a common denominator, collected, one
        term plus a product, a power of a known sum plus a little."""
        for candidate in (self._factored(terms), self._together(terms),
                          self._collected(terms), self._constant_plus(terms),
                          self._power_plus(terms)):
            if candidate is not None:
                yield candidate

    def _term(self, monomial: Monomial, coefficient: Rational
              ) -> tuple[Monomial, Rational] | None:
        """One term with its atoms rewritten. A group that became a single term is taken
        into the product (to an integer power), and so is a sum that can be written as a
        product with a factor that cancels against the others (``P*(1 - P)`` against
        ``P^-1*(1 - P)^-1``)."""
        X = self.X
        exponents: dict[int, Rational] = {}
        scaled: Rational | None = coefficient
        deferred: list[tuple[int, list[int], Rational]] = []
        try:
            for atom, exponent in monomial:
                rewritten = self._atom(atom)
                if X.term_count(rewritten) == 0:
                    return None if exponent < 0 else ((), 0)
                kind, _, operands = X.atom_key(atom)
                # (a shared sum keeps its one form: another one here would be a copy)
                if kind == "group" and operands[0] in self.products and \
                        exponent.denominator == 1 and self.uses.get(operands[0], 0) <= 1:
                    deferred.append((rewritten, self.products[operands[0]], exponent))
                else:
                    scaled = self._times(exponents, scaled, rewritten, exponent)
            for rewritten, products, exponent in deferred:
                form = next((p for p in products if self._cancels(exponents, p)),
                            rewritten)
                scaled = self._times(exponents, scaled, form, exponent)
        except ConstantTooLarge:
            return None
        if scaled is None:
            return None
        _merge_powers(X, exponents)
        return tuple(sorted((a, _q(e)) for a, e in exponents.items() if e != 0)), scaled

    def _cancels(self, exponents: dict[int, Rational], product: int) -> bool:
        """Whether ``product`` has a factor already in ``exponents`` (so that they cancel,
        or their powers add up: ``2*(A + C)*(A + C)^2`` is ``2*(A + C)^3``)."""
        X = self.X
        ((factors, _),) = X.terms(product)
        for atom, _ in factors:
            kind, _, operands = X.atom_key(atom)
            if atom in exponents or (kind == "group" and
                                     X.as_atom(X.neg(operands[0])) in exponents):
                return True
        return False

    def _times(self, exponents: dict[int, Rational], scaled: Rational | None, form: int,
               exponent: Rational, unwrap: bool = True) -> Rational | None:
        """Multiply ``form^exponent`` into the term (``exponents``, ``scaled``), its own
        factors taken in where it is a single term and the power an integer. The new
        coefficient, or None where a number would be beyond the bound."""
        X = self.X
        if scaled is None:
            return None
        inner = X.terms(form)
        if len(inner) == 1 and exponent.denominator == 1 and len(inner[0][0]) <= _FLAT:
            factors, factor = inner[0]
            power = _power(factor, exponent.numerator)
            if power is None:
                return None
            scaled = _q(scaled * power)
            for a, e in factors:
                scaled = self._factor(exponents, scaled, a, e * exponent, unwrap)
            return scaled
        return self._factor(exponents, scaled, X.as_atom(form), exponent, unwrap)

    def _factor(self, exponents: dict[int, Rational], scaled: Rational | None, atom: int,
                exponent: Rational, unwrap: bool = True) -> Rational | None:
        """Multiply ``atom^exponent`` into the term: a sum with the sign all its uses share
        (``(1 - P)``, never ``(P - 1)``, so that equal factors cancel), ``sqrt(u)^2`` as
        ``u`` (one level: ``unwrap`` is false inside). The new coefficient, or None where a
        number would be beyond the bound."""
        X = self.X
        if scaled is None:
            return None
        kind, name, operands = X.atom_key(atom)
        if exponent.denominator == 1:
            if unwrap and kind == "func" and name == "sqrt" and exponent.numerator % 2 == 0:
                return self._times(exponents, scaled, operands[0], exponent.numerator // 2,
                                   unwrap=False)
            if kind == "group" and not self._positive(X.terms(operands[0])):
                atom = X.as_atom(X.neg(operands[0]))
                scaled = -scaled if exponent.numerator % 2 else scaled
        exponents[atom] = exponents.get(atom, 0) + exponent
        return scaled

    def _content(self, terms: Poly) -> tuple[Rational, dict[int, Rational], Poly]:
        return _content(terms, self._positive(terms.items()))

    def _positive(self, terms: Iterable[tuple[Monomial, Rational]]) -> bool:
        """The sign a sum is written with, the one every use of it shares (so that equal
        factors cancel): its constant term's, else the sign of the term of the highest
        degree, ties broken by the names in it. ``1 - P``, ``x - y``, ``5*x - y``."""
        X = self.X

        def key(term: tuple[Monomial, Rational]) -> tuple[object, ...]:
            monomial = term[0]
            degree = sum(e for _, e in monomial if e > 0)
            names = sorted(X.atom_key(a)[1] or "(" for a, _ in monomial)
            return bool(monomial), -degree, names

        return min(terms, key=key)[1] > 0

    def _signed(self, poly: int) -> int:
        """A single term with a negative number as ``(P - Y)*X``, not ``-(Y - P)*X``: the
        sign taken into a sum to an odd power, the one that then has the most positive
        terms (a numerator's before a denominator's)."""
        X = self.X
        ((monomial, coefficient),) = X.terms(poly)
        if coefficient > 0:
            return poly
        choices = []
        for atom, exponent in monomial:
            if X.atom_key(atom)[0] == "group" and exponent.denominator == 1 and \
                    exponent.numerator % 2:
                negative = sum(c < 0 for _, c in X.terms(X.atom_inner(atom)))
                choices.append((-negative, exponent < 0, atom))
        if not choices:
            return poly
        _, _, atom = min(choices)
        exponents = dict(monomial)
        exponent = exponents.pop(atom)
        flipped = X.as_atom(X.neg(X.atom_inner(atom)))
        exponents[flipped] = exponents.get(flipped, 0) + exponent
        return X.from_terms({tuple(sorted(exponents.items())): -coefficient})

    def _atom(self, atom: int) -> int:
        """The expression of ``atom`` with its operands rewritten."""
        X = self.X
        kind, name, operands = X.atom_key(atom)
        if kind == "sym":
            return X.single(atom)
        if kind == "group":
            return self.done[operands[0]]
        arguments = [self.done[a] for a in operands]
        inverse = _INVERSES.get(name)
        if inverse is not None:
            terms = X.terms(arguments[0])
            if len(terms) == 1 and terms[0][1] == 1 and len(terms[0][0]) == 1 and \
                    terms[0][0][0][1] == 1 and X.atom_key(terms[0][0][0][0])[1] == inverse:
                # exp(log(u)) is u where log(u) is defined, log(exp(u)) is u everywhere
                return X.atom_key(terms[0][0][0][0])[2][0]
        return X.call(name, *arguments)

    # --- common factors ----------------------------------------------------------------

    def _factored(self, terms: Poly) -> int | None:
        """``terms`` as a number times a product times factors that are sums, or None when
        nothing comes out."""
        coefficient, content, rest = self._content(terms)
        rest = self._joined(rest)
        if not rest:
            return self.X.zero
        factors = self._split(rest) if _polynomial(rest) else [rest]
        if not content and len(factors) == 1 and coefficient == 1:
            return None
        return self._product(coefficient, content, [(f, 1) for f in factors])

    def _as_written(self, factor: Poly) -> Poly | int:
        """A factor left by :meth:`_factored` as a known sum to a power plus a little where
        that is shorter (``A - 3*B^2*C - ... - C^3`` is ``A - (B + C)^3``), else itself."""
        if len(factor) < 3:
            return factor
        plus = self._power_plus(factor)
        if plus is not None and self.length(plus) < self.length(self.X.from_terms(factor)):
            return plus
        return factor

    def _constant_plus(self, terms: Poly) -> int | None:
        """``terms`` as its constant plus the others factored, where they are a product:
        ``A^4 + 4*A^3*C + ... + C^4 + 1`` is ``(A + C)^4 + 1``."""
        if not 3 <= len(terms) <= _ONE_OUT or () not in terms:
            return None
        others = {m: c for m, c in terms.items() if m != ()}
        product = self._factored(others)
        if product is None or self.X.term_count(product) != 1:
            return None
        ((factors, scaled),) = self.X.terms(product)
        return self.X.from_terms({factors: scaled, (): terms[()]})

    def _power_plus(self, terms: Poly) -> int | None:
        """``terms`` as a multiple of a known sum to a power plus a little: ``A^2*B^4 +
        2*A*B^3*C + ... + 65`` is ``(A*B^2 + A*B*C - B - 8)^2 + 1``. The first power that
        leaves at most two terms, or None."""
        if not 3 <= len(terms) <= _TERMS or not _polynomial(terms):
            return None
        for divisor in self._known(terms):
            power = divisor
            for k in range(2, 5):
                power = _times(power, divisor)
                if len(power) > len(terms) + 2:
                    break
                lead = max(power)
                if lead not in terms:
                    continue
                scale = Fraction(terms[lead]) / Fraction(power[lead])
                left = dict(terms)
                for m, c in power.items():
                    left[m] = left.get(m, 0) - scale * c
                left = {m: _q(c) for m, c in left.items() if c != 0}
                if len(left) <= 2:
                    out: Poly = dict(left)
                    if not self._positive(divisor.items()):  # the sign every use shares
                        divisor = {m: -c for m, c in divisor.items()}
                        scale = -scale if k % 2 else scale
                    atom = self.X.as_atom(self.X.from_terms(divisor))
                    key: Monomial = ((atom, k),)  # (the sum's power may be a term already)
                    out[key] = _q(out.get(key, 0) + scale)
                    return self.X.from_terms(out)
        return None

    def _collected(self, terms: Poly) -> int | None:
        """``terms`` with the atom most of them share taken out of those, over and over:
        ``log(x)*x^x - T^2*log(x)*x^x - T^2*x^x + x^x - cos(x)`` is
        ``(1 - T^2)*(log(x) + 1)*x^x - cos(x)`` (and big terms that cancel stay together
        instead of being summed apart). None where no atom is shared by two terms and not
        by all of them."""
        X = self.X
        rest = dict(terms)
        out: Poly = {}
        while len(rest) > 2:
            counts: dict[int, int] = {}
            for monomial in rest:
                for atom, exponent in monomial:
                    if exponent > 0:
                        counts[atom] = counts.get(atom, 0) + 1
            shared = [(-n, atom) for atom, n in counts.items() if 2 <= n < len(rest)]
            if not shared:
                break
            _, atom = min(shared)
            part = {m: c for m, c in rest.items() if dict(m).get(atom, 0) > 0}
            for monomial in part:
                del rest[monomial]
            product = self._factored(part)
            if product is None:
                return None
            ((monomial, coefficient),) = X.terms(product)
            out[monomial] = out.get(monomial, 0) + coefficient
        if not out:
            return None
        for monomial, coefficient in rest.items():
            out[monomial] = out.get(monomial, 0) + coefficient
        return X.from_terms(out)

    def _product(self, coefficient: Rational, content: dict[int, Rational],
                 factors: list[tuple[Poly, Rational]]) -> int:
        """``coefficient * content * factor1^e1 * ...`` as one term (sums as groups)."""
        X = self.X
        exponents = dict(content)
        for factor, exponent in factors:
            if exponent.denominator == 1 and not self._positive(factor.items()):
                factor = {m: -c for m, c in factor.items()}
                coefficient = coefficient if exponent.numerator % 2 == 0 else -coefficient
            written = self._as_written(factor)
            if not isinstance(written, dict):
                atom = X.as_atom(written)
                exponents[atom] = exponents.get(atom, 0) + exponent
                continue
            if len(factor) == 1:
                ((monomial, c),) = factor.items()
                if c != 1:  # a number from a split: into the coefficient
                    coefficient = _q(coefficient * c)
                for a, e in monomial:
                    exponents[a] = exponents.get(a, 0) + e * exponent
                continue
            atom = X.as_atom(X.from_terms(factor))
            exponents[atom] = exponents.get(atom, 0) + exponent
        monomial = tuple(sorted((a, _q(e)) for a, e in exponents.items() if e != 0))
        return X.from_terms({monomial: coefficient})

    def _split(self, poly: Poly) -> list[Poly]:
        """A polynomial (non-negative integer powers) as factors: divided by the known sums,
        and split where the terms of one variable are multiples of one sum."""
        pending: list[Poly] = [poly]
        done: list[Poly] = []
        while pending:
            current = pending.pop()
            if len(done) + len(pending) >= _FACTORS or len(current) < 2:
                done.append(current)
                continue
            parts = _by_variable(current) or self._by_divisor(current)
            if parts is None:
                done.append(current)
            else:
                pending.extend(parts)
        return done

    def _known(self, poly: Poly) -> Iterable[Poly]:
        """The known sums made of ``poly``'s atoms only, at most :data:`_DIVISORS` of them,
        the longest first (the larger factor found first leaves less to search)."""
        atoms = _atoms(poly)
        found = [divisor for atom in sorted(atoms) for divisor, used in
                 self.divisors.get(atom, ()) if used <= atoms and len(divisor) < len(poly) + 3]
        found.sort(key=len, reverse=True)
        return found[:_DIVISORS]

    def _by_divisor(self, poly: Poly) -> tuple[Poly, Poly] | None:
        for divisor in self._known(poly):
            if len(divisor) < len(poly):
                quotient = _divide(poly, divisor)
                if quotient is not None:
                    return divisor, quotient
        return None

    # --- common denominators -----------------------------------------------------------

    def _together(self, terms: Poly) -> int | None:
        """A sum with fractions as one fraction: its terms over the product of their
        denominators, the numerator multiplied out (and cancelled against them) or, where
        that is shorter, with the denominators' sums kept whole in it."""
        denominator: dict[int, Rational] = {}
        for monomial in terms:
            for atom, exponent in monomial:
                if exponent < 0:
                    denominator[atom] = max(denominator.get(atom, 0), -exponent)
        if not denominator:
            return None
        best = None
        for multiplied in (denominator, {}):
            numerator = self._numerator(terms, denominator, multiplied)
            if numerator is None:
                continue
            if not numerator:
                return self.X.zero
            candidate = self._over(numerator, denominator)
            if best is None or self.length(candidate) < self.length(best):
                best = candidate
        return best

    def _over(self, numerator: Poly, denominator: dict[int, Rational]) -> int:
        """``numerator / denominator`` with the factors they share cancelled."""
        X = self.X
        coefficient, content, rest = self._content(numerator)
        below = {a: -e for a, e in denominator.items()}
        for atom in list(below):  # a denominator that divides the numerator cancels
            inner = X.terms(X.atom_inner(atom)) if X.atom_key(atom)[0] == "group" else ()
            divisor = dict(inner)
            while below[atom] <= -1 and len(divisor) > 1 and _polynomial(rest) and \
                    _polynomial(divisor) and (quotient := _divide(rest, divisor)) is not None:
                rest, below[atom] = quotient, below[atom] + 1
        for atom, exponent in content.items():
            below[atom] = below.get(atom, 0) + exponent
        factors = self._split(rest) if _polynomial(rest) else [rest]
        return self._product(coefficient, below, [(f, 1) for f in factors])

    def _numerator(self, terms: Poly, denominator: dict[int, Rational],
                   multiplied: dict[int, Rational]) -> Poly | None:
        """``terms`` times ``denominator``, the sums among ``multiplied`` multiplied out
        (None past the bound); a term that is a bare sum joins the others."""
        numerator: Poly = {}
        for monomial, coefficient in terms.items():
            exponents = dict(monomial)
            for atom, exponent in denominator.items():
                exponents[atom] = exponents.get(atom, 0) + exponent
            expanded = self._expanded(exponents, coefficient, multiplied)
            if expanded is None:
                return None
            for m, c in expanded.items():
                numerator[m] = numerator.get(m, 0) + c
            if len(numerator) > _TERMS:
                return None
        return {m: _q(c) for m, c in self._joined(numerator).items() if c != 0}

    def _expanded(self, exponents: dict[int, Rational], coefficient: Rational,
                  multiplied: dict[int, Rational]) -> Poly | None:
        """The term ``coefficient * prod(atom^e)`` with the groups among ``multiplied`` that
        have a positive integer power multiplied out (None past the bound)."""
        X = self.X
        result: Poly = {(): coefficient}
        kept: dict[int, Rational] = {}
        for atom, exponent in exponents.items():
            if exponent == 0:
                continue
            if atom in multiplied and exponent > 0 and exponent.denominator == 1 and \
                    X.atom_key(atom)[0] == "group" and X.atom_inner(atom) not in self.shared:
                inner = dict(X.terms(X.atom_inner(atom)))
                for _ in range(exponent.numerator):
                    result = _times(result, inner)
                    if len(result) > _TERMS:
                        return None
            else:
                kept[atom] = exponent
        factor = tuple(sorted(kept.items()))
        return {_merge(m, factor): c for m, c in result.items()}

    # --- size --------------------------------------------------------------------------

    def length(self, poly: int) -> int:
        """About how many characters ``poly`` prints as (its tree, shared parts counted at
        each use: these are compared only between forms of one part)."""
        X = self.X
        for part in X.postorder(poly, skip=self.lengths):
            total = 0
            for monomial, coefficient in X.terms(part):
                size = 3 + (0 if abs(coefficient) == 1 and monomial else
                            len(str(abs(coefficient))))
                for atom, exponent in monomial:
                    size += 1 + self._atom_length(atom)
                    if exponent not in (1, -1):
                        size += 1 + len(str(abs(exponent)))
                total += size
            self.lengths[part] = max(1, total - 3)
        return self.lengths[poly]

    def _atom_length(self, atom: int) -> int:
        kind, name, operands = self.X.atom_key(atom)
        if kind == "sym":
            return len(name)
        inner = sum(self.lengths[o] + 2 for o in operands)
        return inner + (len(name) if kind == "func" else 0)


# --- polynomials as dicts ----------------------------------------------------------------

def _q(x: Rational) -> Rational:
    return x.numerator if x.denominator == 1 else x


def _power(c: Rational, n: int) -> Rational | None:
    if c == 0 and n < 0:
        return None
    if abs(n) > 64 and abs(c) != 1:
        return None
    return _q(Fraction(c) ** n)


def _merge(a: Monomial, b: Monomial) -> Monomial:
    exponents = dict(a)
    for atom, exponent in b:
        exponents[atom] = exponents.get(atom, 0) + exponent
    return tuple(sorted((x, _q(e)) for x, e in exponents.items() if e != 0))


def _times(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = _merge(ma, mb)
            out[m] = out.get(m, 0) + ca * cb
    return {m: _q(c) for m, c in out.items() if c != 0}


def _atoms(poly: Poly) -> set[int]:
    return {a for monomial in poly for a, _ in monomial}


def _polynomial(poly: Poly) -> bool:
    """Whether every power in ``poly`` is a non-negative integer (so it can be divided)."""
    return all(e > 0 and e.denominator == 1 for monomial in poly for _, e in monomial)


def _content(terms: Poly, positive: bool) -> tuple[Rational, dict[int, Rational], Poly]:
    """``terms`` as ``number * product * rest``: the rational and the powers every term
    shares (the smallest positive or the largest negative power of an atom all terms have,
    with one sign), and what is left, with the sign ``positive`` says ``terms`` has."""
    monomials = list(terms)
    shared = dict(monomials[0])
    for monomial in monomials[1:]:
        powers = dict(monomial)
        shared = {a: (min(e, powers[a]) if e > 0 else max(e, powers[a]))
                  for a, e in shared.items() if a in powers and (e > 0) == (powers[a] > 0)}
    numerators = math.gcd(*(c.numerator for c in terms.values()))
    denominators = math.lcm(*(c.denominator for c in terms.values()))
    sign = 1 if positive else -1
    number = _q(Fraction(sign * numerators, denominators))
    rest: Poly = {}
    for monomial, coefficient in terms.items():
        powers = dict(monomial)
        for atom, exponent in shared.items():
            powers[atom] -= exponent
        reduced = tuple(sorted((a, e) for a, e in powers.items() if e != 0))
        rest[reduced] = _q(coefficient / Fraction(number))
    return number, shared, rest


def _by_variable(poly: Poly) -> tuple[Poly, Poly] | None:
    """``poly`` as ``P * (c0 + c1*v + c2*v^2 ...)`` for one of its atoms ``v`` and a sum
    ``P``, when the terms with each power of ``v`` are the same multiple of one sum: the
    product of two sums in different atoms, multiplied out, is split again."""
    for variable in sorted(_atoms(poly)):
        by_power: dict[Rational, Poly] = {}
        for monomial, coefficient in poly.items():
            powers = dict(monomial)
            k = powers.pop(variable, 0)
            by_power.setdefault(k, {})[tuple(sorted(powers.items()))] = coefficient
        if len(by_power) < 2:
            continue
        groups = list(by_power.items())
        base = groups[0][1]
        if len(base) < 2:
            continue
        ratios: Poly = {}
        for k, group in groups:
            ratio = _multiple(group, base)
            if ratio is None:
                break
            ratios[((variable, k),) if k else ()] = ratio
        else:
            first = min(base)
            scale = base[first]
            return ({m: _q(c / Fraction(scale)) for m, c in base.items()},
                    {m: _q(c * scale) for m, c in ratios.items()})
    return None


def _multiple(a: Poly, b: Poly) -> Rational | None:
    """The number ``r`` with ``a == r*b``, if there is one."""
    if a.keys() != b.keys():
        return None
    first = next(iter(b))
    ratio = Fraction(a[first]) / Fraction(b[first])
    if all(Fraction(c) == ratio * b[m] for m, c in a.items()):
        return _q(ratio)
    return None


def _divide(poly: Poly, divisor: Poly) -> Poly | None:
    """``poly / divisor`` when it divides exactly (polynomials with non-negative integer
    powers; division by a lexicographic leading term), else None."""
    variables = sorted(_atoms(poly) | _atoms(divisor))

    def key(monomial: Monomial) -> tuple[Rational, ...]:
        powers = dict(monomial)
        return tuple(powers.get(v, 0) for v in variables)

    lead = max(divisor, key=key)
    lead_powers, lead_coefficient = dict(lead), Fraction(divisor[lead])
    remainder = dict(poly)
    quotient: Poly = {}
    for _ in range(4 * len(poly) + 16):
        if not remainder:
            return {m: _q(c) for m, c in quotient.items()}
        top = max(remainder, key=key)
        powers = dict(top)
        step = {a: powers.get(a, 0) - e for a, e in lead_powers.items()}
        if any(e < 0 for e in step.values()):
            return None
        for a, e in powers.items():
            step.setdefault(a, e)
        monomial = tuple(sorted((a, e) for a, e in step.items() if e != 0))
        ratio = Fraction(remainder[top]) / lead_coefficient
        quotient[monomial] = quotient.get(monomial, 0) + ratio
        for m, c in divisor.items():
            product = _merge(monomial, m)
            value = remainder.get(product, 0) - ratio * c
            if value:
                remainder[product] = value
            else:
                remainder.pop(product, None)
    return None


def _merge_powers(X: Algebra, exponents: dict[int, Rational]) -> None:
    """``pow(x, b) * x^k`` as ``pow(x, b + k)`` (equal wherever both are defined), for an
    atom ``x`` and an integer ``k``, in place."""
    for atom in [a for a in exponents if X.atom_key(a)[:2] == ("func", "pow")]:
        exponent = exponents.get(atom)
        if exponent != 1:
            continue
        base, power = X.atom_key(atom)[2]
        inner = X.terms(base)
        if len(inner) != 1 or inner[0][1] != 1 or len(inner[0][0]) != 1:
            continue
        ((variable, one),) = inner[0][0]
        k = exponents.get(variable, 0)
        if one != 1 or k == 0 or k.denominator != 1:
            continue
        merged = X.as_atom(X.call("pow", base, X.add(power, X.number(k))))
        del exponents[atom], exponents[variable]
        exponents[merged] = exponents.get(merged, 0) + 1
