"""micrograd's own tests, run on :class:`gradcalc.Value` as micrograd users write them.

``test_sanity_check`` and ``test_more_ops`` are the two scenarios of karpathy/micrograd's
``test/test_engine.py``: the same statements on ``Value(-4.0)`` and friends, no flags, the same
tolerance (1e-6). micrograd checks them against PyTorch (float64 tensors); PyTorch is not a
dependency here, so the reference numbers are their exact values instead, worked out below by
:class:`Dual`, forward-mode differentiation in exact rational arithmetic (``fractions``): an
oracle that shares nothing with gradcalc (no float, no reverse mode, no registry), whose results
PyTorch's float64 ones equal to within rounding. They are also the numbers micrograd's README
prints (``24.7041``, ``138.8338``, ``645.5773``).

The last test trains micrograd's ``nn.py`` (``Neuron``, ``Layer``, ``MLP``, ``zero_grad`` as
``p.grad = 0``) on values, as its demo notebook does.
"""

from __future__ import annotations

import random
from fractions import Fraction

from gradcalc import Value

TOL = 1e-6  # micrograd's


class Dual:
    """``value + derivative * eps`` with ``eps**2 = 0``, in exact rationals: the ops the two
    scenarios use (``+ - * /``, ``**`` by an integer, ``relu``), each written out by hand."""

    def __init__(self, value: Fraction | int, derivative: Fraction | int = 0) -> None:
        self.value, self.derivative = Fraction(value), Fraction(derivative)

    @staticmethod
    def of(x: Dual | int | Fraction) -> Dual:
        return x if isinstance(x, Dual) else Dual(x)

    def __add__(self, other: Dual | int | Fraction) -> Dual:
        o = Dual.of(other)
        return Dual(self.value + o.value, self.derivative + o.derivative)

    __radd__ = __add__

    def __neg__(self) -> Dual:
        return Dual(-self.value, -self.derivative)

    def __sub__(self, other: Dual | int | Fraction) -> Dual:
        return self + -Dual.of(other)

    def __rsub__(self, other: int | Fraction) -> Dual:
        return Dual.of(other) - self

    def __mul__(self, other: Dual | int | Fraction) -> Dual:
        o = Dual.of(other)
        return Dual(self.value * o.value, self.derivative * o.value + self.value * o.derivative)

    __rmul__ = __mul__

    def __truediv__(self, other: Dual | int | Fraction) -> Dual:
        o = Dual.of(other)
        return Dual(self.value / o.value,
                    (self.derivative * o.value - self.value * o.derivative) / o.value**2)

    def __rtruediv__(self, other: int | Fraction) -> Dual:
        return Dual.of(other) / self

    def __pow__(self, n: int) -> Dual:
        return Dual(self.value**n, n * self.value ** (n - 1) * self.derivative)

    def relu(self) -> Dual:
        # PyTorch's relu'(0) = 0; the scenarios never sit at 0
        return self if self.value > 0 else Dual(0)


# --- the reference, exactly ------------------------------------------------------------------

def sanity_check(x):  # the statements of micrograd's test_sanity_check
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    return y


def more_ops(a, b, half, ten):  # the statements of micrograd's test_more_ops
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / half
    g += ten / f
    return g


def test_the_reference_numbers():
    """What the exact oracle gives, and micrograd's README prints to four decimals."""
    y = sanity_check(Dual(-4, 1))
    assert (y.value, y.derivative) == (-20, 46)
    by_a = more_ops(Dual(-4, 1), Dual(2), 2, 10)
    by_b = more_ops(Dual(-4), Dual(2, 1), 2, 10)
    assert by_a.value == by_b.value == Fraction(2421, 98)
    assert by_a.derivative == Fraction(47620, 343)
    assert by_b.derivative == Fraction(221433, 343)
    assert f"{float(by_a.value):.4f}" == "24.7041"
    assert f"{float(by_a.derivative):.4f}" == "138.8338"
    assert f"{float(by_b.derivative):.4f}" == "645.5773"


# --- micrograd's test_engine.py, on gradcalc values -------------------------------------------

def test_sanity_check():
    x = Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    xmg, ymg = x, y

    # micrograd compares with PyTorch exactly here: small integers, exact in float64
    assert ymg.data == -20.0
    assert xmg.grad == 46.0


def test_more_ops():
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    amg, bmg, gmg = a, b, g

    tol = TOL
    assert abs(gmg.data - 2421 / 98) < tol
    assert abs(amg.grad - 47620 / 343) < tol
    assert abs(bmg.grad - 221433 / 343) < tol


def test_more_ops_against_the_exact_oracle_at_other_points():
    """The same statements at a few more points (both signs of every relu argument), against
    :class:`Dual` evaluated at the same points."""
    for x, y in [(-4, 2), (3, 1), (1, 3), (-2, -5), (Fraction(1, 2), Fraction(-3, 4))]:
        a, b = Value(float(x)), Value(float(y))
        g = more_ops(a, b, 2.0, 10.0)
        g.backward()
        by_a = more_ops(Dual(x, 1), Dual(y), 2, 10)
        by_b = more_ops(Dual(x), Dual(y, 1), 2, 10)
        scale = max(1.0, abs(float(by_a.derivative)), abs(float(by_b.derivative)))
        assert abs(g.data - float(by_a.value)) < TOL * max(1.0, abs(float(by_a.value)))
        assert abs(a.grad - float(by_a.derivative)) < TOL * scale
        assert abs(b.grad - float(by_b.derivative)) < TOL * scale


def test_grad_starts_at_zero_as_in_micrograd():
    a = Value(3.0)
    assert a.grad == 0.0 and a.requires_grad
    a.grad += 1.5  # micrograd code may add to a gradient before any backward pass
    (a * 2).backward()
    assert a.grad == 3.5


# --- micrograd's nn.py, trained as in its demo -----------------------------------------------

class Module:
    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0

    def parameters(self):
        return []


class Neuron(Module):
    def __init__(self, nin, rng, nonlin=True):
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self):
        return [*self.w, self.b]


class Layer(Module):
    def __init__(self, nin, nout, rng, **kwargs):
        self.neurons = [Neuron(nin, rng, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MLP(Module):
    def __init__(self, nin, nouts, rng):
        sz = [nin, *nouts]
        self.layers = [Layer(sz[i], sz[i + 1], rng, nonlin=i != len(nouts) - 1)
                       for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def test_micrograd_mlp_trains():
    rng = random.Random(1337)
    points = [(rng.uniform(-2, 2), rng.uniform(-2, 2)) for _ in range(16)]
    labels = [1 if x * y > 0 else -1 for x, y in points]  # quadrants: not linearly separable
    model = MLP(2, [8, 8, 1], rng)

    def loss():
        scores = [model(list(p)) for p in points]
        losses = [(1 + -yi * si).relu() for yi, si in zip(labels, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        reg_loss = 1e-4 * sum(p * p for p in model.parameters())
        accuracy = [(yi > 0) == (si > 0) for yi, si in zip(labels, scores, strict=True)]
        return data_loss + reg_loss, sum(accuracy) / len(accuracy)

    first, _ = loss()
    for k in range(40):
        total, accuracy = loss()
        model.zero_grad()
        total.backward()
        learning_rate = 1.0 - 0.9 * k / 40
        for p in model.parameters():
            p.data -= learning_rate * p.grad
    last, accuracy = loss()
    assert last.data < 0.1 * first.data
    assert accuracy == 1.0
    assert all(isinstance(p.grad, float) for p in model.parameters())
