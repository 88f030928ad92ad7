#!/usr/bin/env python
"""Performance benchmark of gradcalc's core: parse, build, forward, counting pass, backward.

    python tests/benchmarks/bench_core.py [--sizes 10000,100000] [--repeat N] [--quick]
                                          [--workloads diamond,chain,wide,random]
                                          [--skip-parse-from N] [--skip-straight-from N]
                                          [--cold-runs N] [--json PATH]

Four generated workloads (diamond chain, chain, wide sum, seeded random DAG) at each size; each
(workload, size) is measured in a fresh subprocess, so heaps do not carry over and peak memory
is that of one process. Reports medians of repeated runs, per-node microseconds and ratios
(the machine this was written on is a shared 2-core box: bare seconds are noise, ratios travel).

Baselines, measured in the same processes, interleaved with the gradcalc runs:
  * Lark's default approach on the same grammar file: ``Lark(grammar, parser="lalr")`` builds a
    parse tree, then a ``lark.Transformer`` makes the same AST (``Transformer_NonRecursive`` where
    the recursive one raises RecursionError; the report says when that happened).
  * Lark's best way: ``Lark(grammar, parser="lalr", keep_all_tokens=True, transformer=...)``, an
    inline transformer called in Lark's own LALR reductions, making exactly gradcalc's AST.
  * Straight-line Python: the same program written out as Python statements, forward then
    adjoint, compiled once outside the timed region. Its gradients are checked against
    gradcalc's (an assertion), so the comparison is an honest one. This code exists only here.

See tests/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the venv has gradcalc installed (editable); this is a fallback
    sys.path.insert(0, str(REPO))

from gradcalc import api, engine  # noqa: E402
from gradcalc.ast import Apply, Assign, Name, Num, Program, from_tree  # noqa: E402
from gradcalc.dag import Dag, build  # noqa: E402
from gradcalc.errors import Source, Span  # noqa: E402
from gradcalc.parse import grammar_text, parse  # noqa: E402

pc = time.perf_counter
WORKLOAD_NAMES = ("diamond", "chain", "wide", "random")
STAGES = ("parse", "build", "cone", "forward", "active", "count", "backward")

try:  # names and numbers as the grammar defines them
    from gradcalc.parse import NAME_PATTERN, NUMBER_PATTERN
except ImportError:  # a gradcalc from before they were public: ask Lark
    from lark import Lark as _Lark

    _terminals = _Lark(grammar_text(), parser="lalr")
    NAME_PATTERN, NUMBER_PATTERN = (_terminals.get_terminal(t).pattern.to_regexp()
                                    for t in ("NAME", "NUMBER"))
    del _Lark, _terminals

# A simple tokenizer, only to count tokens for tokens/s (newlines and ';' count: they are
# the _SEP tokens of the grammar). Comments and line continuations are not generated here.
TOKEN_RE = re.compile(rf"(?:{NAME_PATTERN})|(?:{NUMBER_PATTERN})|\*\*|[-+*/^(),=;\n]")


def count_tokens(text: str) -> int:
    return sum(1 for _ in TOKEN_RE.finditer(text))


# =============================================================================================
# Workloads: program text, the same program as an AST made directly (to skip parsing at huge
# sizes), and the same program as straight-line Python (forward then adjoint).
# =============================================================================================

S = Span(0, 0, 1, 1)  # a dummy span for directly built ASTs (spans matter only for messages)


def _name(n: str) -> Name:
    return Name(n, S)


def _num(text: str) -> Num:
    return Num(float(text), text, S)


def _bin(op: str, a: Any, b: Any) -> Apply:
    return Apply(op, [a, b], S, S)


def _call(fn: str, a: Any) -> Apply:
    return Apply(fn, [a], S, S, call=True)


def _assign(n: str, e: Any) -> Assign:
    return Assign(n, S, e, S)


@dataclass
class Workload:
    name: str
    size: int  # the requested node count; the real one is len(dag)
    text: str
    at: dict[str, float]
    make_ast: Callable[[], Program]
    # Python sources of `def f(inp, full)`: forward only, and forward then adjoint
    make_straight: Callable[[], tuple[str, str]]
    straight_inp: list[float] | None
    gvar: Callable[[str], str]  # gradcalc name -> straight-line adjoint variable
    notes: list[str] = field(default_factory=list)


def _function(body_fwd: list[str], body_adj: list[str], ret_fwd: str, ret_full: str
              ) -> tuple[str, str]:
    head = "def f(inp, full):\n"
    fwd = head + "\n".join("    " + s for s in body_fwd) + f"\n    return {ret_fwd}\n"
    full = (head + "\n".join("    " + s for s in body_fwd + body_adj)
            + f"\n    if full:\n        return locals()\n    return {ret_full}\n")
    return fwd, full


def _sum_lines(target: str, terms: list[str], chunk: int = 64) -> list[str]:
    """``target = t0 + t1 + ...`` as several statements, left-associative like gradcalc's sum
    (Python's compiler recurses on a 100,000-term expression)."""
    lines = []
    for i in range(0, len(terms), chunk):
        part = " + ".join(terms[i : i + chunk])
        lines.append(f"{target} = {part}" if i == 0 else f"{target} = {target} + {part}")
    return lines


def diamond(size: int) -> Workload:
    """X0 = 0.5; Xi = sin(X(i-1)) + cos(X(i-1)): 3 nodes per statement, 2^k paths."""
    k = max(1, (size - 1) // 3)
    lines = ["X0 = 0.5"] + [f"X{i} = sin(X{i - 1}) + cos(X{i - 1})" for i in range(1, k + 1)]

    def make_ast() -> Program:
        st = [_assign("X0", _num("0.5"))]
        for i in range(1, k + 1):
            p = f"X{i - 1}"
            st.append(_assign(f"X{i}", _bin("add", _call("sin", _name(p)),
                                             _call("cos", _name(p)))))
        return from_tree(st, Source(""))

    def make_straight() -> tuple[str, str]:
        fwd = ["x0 = 0.5"] + [f"x{i} = sin(x{i - 1}) + cos(x{i - 1})" for i in range(1, k + 1)]
        fwd.append(f"out = x{k}")
        adj = [f"g{k} = 1.0"] + [f"g{i - 1} = g{i}*(cos(x{i - 1}) - sin(x{i - 1}))"
                                 for i in range(k, 0, -1)]
        return _function(fwd, adj, "out", "(out, g0)")

    return Workload("diamond", size, "\n".join(lines) + "\n", {}, make_ast, make_straight, None,
                    lambda n: "g" + n[1:])


def chain(size: int) -> Workload:
    """X0 = 0.5; Xi = X(i-1)*1.0001 + 0.1: 2 nodes per statement (the constants are shared)."""
    k = max(1, (size - 3) // 2)
    lines = ["X0 = 0.5"] + [f"X{i} = X{i - 1}*1.0001 + 0.1" for i in range(1, k + 1)]

    def make_ast() -> Program:
        st = [_assign("X0", _num("0.5"))]
        for i in range(1, k + 1):
            st.append(_assign(f"X{i}", _bin("add", _bin("mul", _name(f"X{i - 1}"),
                                                         _num("1.0001")), _num("0.1"))))
        return from_tree(st, Source(""))

    def make_straight() -> tuple[str, str]:
        fwd = ["x0 = 0.5"] + [f"x{i} = x{i - 1}*1.0001 + 0.1" for i in range(1, k + 1)]
        fwd.append(f"out = x{k}")
        adj = [f"g{k} = 1.0"] + [f"g{i - 1} = g{i}*1.0001" for i in range(k, 0, -1)]
        return _function(fwd, adj, "out", "(out, g0)")

    return Workload("chain", size, "\n".join(lines) + "\n", {}, make_ast, make_straight, None,
                    lambda n: "g" + n[1:])


def wide(size: int) -> Workload:
    """OUT = A0*1 + A1*2 + ... on one line: per term an input, a constant, a mul and an add."""
    k = max(1, (size + 1) // 4)
    text = "OUT = " + " + ".join(f"A{i}*{i + 1}" for i in range(k)) + "\n"
    inp = [((i * 7919) % 1000) / 1000.0 - 0.5 for i in range(k)]
    at = {f"A{i}": inp[i] for i in range(k)}

    def make_ast() -> Program:
        expr: Any = _bin("mul", _name("A0"), _num("1"))
        for i in range(1, k):
            expr = _bin("add", expr, _bin("mul", _name(f"A{i}"), _num(str(i + 1))))
        return from_tree([_assign("OUT", expr)], Source(""))

    def make_straight() -> tuple[str, str]:
        fwd = [f"a{i} = inp[{i}]" for i in range(k)]
        fwd += _sum_lines("out", [f"a{i}*{i + 1}.0" for i in range(k)])
        adj = ["gout = 1.0"] + [f"ga{i} = gout*{i + 1}.0" for i in range(k)]
        return _function(fwd, adj, "out", "(out, ga0)")

    return Workload("wide", size, text, at, make_ast, make_straight, inp, lambda n: "ga" + n[1:],
                    ["one statement, one line"])


def random_dag(size: int, seed: int = 20240611) -> Workload:
    """A seeded random DAG: inputs I0.. (1 per 100 nodes) set in the program, then nodes
    Vj = add/mul/sin/tanh of 1-2 earlier nodes (40% from the last 32 nodes, 30% uniformly from
    all earlier ones, 30% from the not-yet-used ones), one statement per node; OUT sums every
    sink, so every node reaches the output. Values are kept in [-4, 4] (an add/mul that would
    leave it becomes tanh of its first operand) so nothing overflows."""
    rng = random.Random(seed)
    m = max(2, size // 100)
    in_text = [f"{rng.uniform(-1.0, 1.0):.3f}" for _ in range(m)]
    vals = [float(t) for t in in_text]
    ops: list[tuple[str, int, int]] = []  # (op, a, b) for node m + index; b = -1 for unary
    pool = list(range(m))  # nodes nobody uses yet
    where = {i: i for i in range(m)}

    def consume(i: int) -> None:
        p = where.pop(i, None)
        if p is not None:
            last = pool.pop()
            if last != i:
                pool[p] = last
                where[last] = p

    def pick(j: int) -> int:
        r = rng.random()
        if r < 0.4:
            return j - 1 - rng.randrange(min(32, j))
        if r < 0.7 or not pool:
            return rng.randrange(j)
        return pool[rng.randrange(len(pool))]

    while m + len(ops) + len(pool) - 1 < size and len(ops) < 4 * size:
        j = m + len(ops)
        r = rng.random()
        op = "add" if r < 0.3 else "mul" if r < 0.6 else "sin" if r < 0.8 else "tanh"
        a = pick(j)
        b = pick(j) if op in ("add", "mul") else -1
        if op == "add":
            v = vals[a] + vals[b]
        elif op == "mul":
            v = vals[a] * vals[b]
        elif op == "sin":
            v = math.sin(vals[a])
        else:
            v = math.tanh(vals[a])
        if not abs(v) <= 4.0:
            op, b, v = "tanh", -1, math.tanh(vals[a])
        consume(a)
        if b >= 0:
            consume(b)
        ops.append((op, a, b))
        vals.append(v)
        where[j] = len(pool)
        pool.append(j)
    sinks = sorted(pool)

    def nm(i: int) -> str:
        return f"I{i}" if i < m else f"V{i}"

    lines = [f"I{i} = {in_text[i]}" for i in range(m)]
    for idx, (op, a, b) in enumerate(ops):
        j = m + idx
        if op == "add":
            lines.append(f"V{j} = {nm(a)} + {nm(b)}")
        elif op == "mul":
            lines.append(f"V{j} = {nm(a)}*{nm(b)}")
        else:
            lines.append(f"V{j} = {op}({nm(a)})")
    lines.append("OUT = " + " + ".join(nm(s) for s in sinks))

    def make_ast() -> Program:
        st = [_assign(f"I{i}", _num(in_text[i])) for i in range(m)]
        for idx, (op, a, b) in enumerate(ops):
            e = (_bin(op, _name(nm(a)), _name(nm(b))) if b >= 0
                 else _call(op, _name(nm(a))))
            st.append(_assign(f"V{m + idx}", e))
        expr: Any = _name(nm(sinks[0]))
        for s in sinks[1:]:
            expr = _bin("add", expr, _name(nm(s)))
        st.append(_assign("OUT", expr))
        return from_tree(st, Source(""))

    def make_straight() -> tuple[str, str]:
        fwd = [f"v{i} = {in_text[i]}" for i in range(m)]
        for idx, (op, a, b) in enumerate(ops):
            j = m + idx
            if op == "add":
                fwd.append(f"v{j} = v{a} + v{b}")
            elif op == "mul":
                fwd.append(f"v{j} = v{a}*v{b}")
            else:
                fwd.append(f"v{j} = {op}(v{a})")
        fwd += _sum_lines("out", [f"v{s}" for s in sinks])
        adj = [f"g{s} = 1.0" for s in sinks]
        assigned = set(sinks)

        def contribute(x: int, term: str) -> None:
            adj.append(f"g{x} {'+=' if x in assigned else '='} {term}")
            assigned.add(x)

        for idx in range(len(ops) - 1, -1, -1):
            op, a, b = ops[idx]
            j = m + idx
            if op == "add":
                contribute(a, f"g{j}")
                contribute(b, f"g{j}")
            elif op == "mul":
                contribute(a, f"g{j}*v{b}")
                contribute(b, f"g{j}*v{a}")
            elif op == "sin":
                contribute(a, f"g{j}*cos(v{a})")
            else:
                contribute(a, f"g{j}*(1.0 - v{j}*v{j})")
        return _function(fwd, adj, "out", "(out, g0)")

    return Workload("random", size, "\n".join(lines) + "\n", {}, make_ast, make_straight, None,
                    lambda n: "g" + n[1:],
                    [f"seed {seed}, {m} inputs, {len(ops)} op statements, {len(sinks)} sinks "
                     "summed into OUT on one line"])


WORKLOADS: dict[str, Callable[[int], Workload]] = {
    "diamond": diamond, "chain": chain, "wide": wide, "random": random_dag}


# =============================================================================================
# Lark's default approach (baseline A): parse tree, then a Transformer making the same AST.
# =============================================================================================

def _tspan(t: Any) -> Span:
    return Span(t.start_pos, t.end_pos, t.line, t.column)


def _tjoin(a: Span, b: Span) -> Span:
    return Span(a.start, b.end, a.line, a.column)


class _DefaultCallbacks:
    """Tree callbacks for ``Lark(grammar, parser="lalr")`` with its default options: anonymous
    tokens ("=", "(", ")", ",") and _SEP are filtered out of the tree, named ones (PLUS, MINUS,
    TIMES, ...) kept. Makes the same AST classes as gradcalc.parse, except that a group's or a
    call's span cannot reach the parentheses (they are not in the tree)."""

    def _bin(op: str) -> Any:  # type: ignore[misc]
        def f(self: Any, c: list[Any]) -> Apply:
            left, sym, right = c
            return Apply(op, [left, right], _tjoin(left.span, right.span), _tspan(sym))
        return f

    add = _bin("add")
    sub = _bin("sub")
    mul = _bin("mul")
    div = _bin("div")
    pow = _bin("pow")
    del _bin

    def number(self, c: list[Any]) -> Num:
        (t,) = c
        return Num(float(t), str(t), _tspan(t))

    def name(self, c: list[Any]) -> Name:
        (t,) = c
        return Name(str(t), _tspan(t))

    def neg(self, c: list[Any]) -> Any:
        sym, operand = c
        span = _tjoin(_tspan(sym), operand.span)
        if type(operand) is Num:
            text = operand.text[1:] if operand.text.startswith("-") else "-" + operand.text
            return Num(-operand.value, text, span)
        return Apply("neg", [operand], span, _tspan(sym))

    def pos(self, c: list[Any]) -> Any:
        return c[1]

    def group(self, c: list[Any]) -> Any:
        return c[0]

    def arguments(self, c: list[Any]) -> list[Any]:
        return list(c)

    def call(self, c: list[Any]) -> Apply:
        t, args = c
        s = _tspan(t)
        return Apply(str(t), args, _tjoin(s, args[-1].span), s, call=True)

    def assign(self, c: list[Any]) -> Assign:
        t, expr = c
        s = _tspan(t)
        return Assign(str(t), s, expr, _tjoin(s, expr.span))

    def bare(self, c: list[Any]) -> Any:
        from gradcalc.ast import Output
        return Output(c[0], c[0].span)

    def start(self, c: list[Any]) -> list[Any]:
        return list(c)


class _InlineCallbacks(_DefaultCallbacks):
    """Callbacks for ``Lark(grammar, parser="lalr", keep_all_tokens=True, transformer=...)``:
    Lark calls them in its LALR reductions (no tree), with every token kept, so they make
    exactly gradcalc's AST, spans of parentheses and calls included."""

    def group(self, c: list[Any]) -> Any:
        left, inner, right = c
        inner.span = _tjoin(_tspan(left), _tspan(right))
        return inner

    def arguments(self, c: list[Any]) -> list[Any]:
        return c[0::2]

    def call(self, c: list[Any]) -> Apply:
        t, _, args, right = c
        s = _tspan(t)
        return Apply(str(t), args, _tjoin(s, _tspan(right)), s, call=True)

    def assign(self, c: list[Any]) -> Assign:
        t, _, expr = c
        s = _tspan(t)
        return Assign(str(t), s, expr, _tjoin(s, expr.span))

    def start(self, c: list[Any]) -> list[Any]:
        from gradcalc.ast import Output
        return [x for x in c if type(x) is Assign or type(x) is Output]  # not the _SEP tokens


def inline_lark(lexer: str = "contextual") -> Any:
    """Lark's best way to make an AST: the transformer runs inside the LALR reductions."""
    from lark import Lark, Transformer

    class Inline(_InlineCallbacks, Transformer):
        pass

    return Lark(grammar_text(), parser="lalr", lexer=lexer, keep_all_tokens=True,
                 transformer=Inline())


def default_lark() -> tuple[Any, Any, Any]:
    from lark import Lark, Transformer, Transformer_NonRecursive

    grammar_file = REPO / "grammar" / "gradcalc.lark"
    grammar = grammar_file.read_text("utf-8")
    assert grammar == grammar_text(), "the packaged grammar differs from grammar/gradcalc.lark"

    class Rec(_DefaultCallbacks, Transformer):
        pass

    class NonRec(_DefaultCallbacks, Transformer_NonRecursive):
        pass

    return Lark(grammar, parser="lalr"), Rec(), NonRec()


def same_dag(a: Dag, b: Dag) -> bool:
    return (a.ops == b.ops and a.args == b.args and a.names == b.names and a.values == b.values
            and a.inputs == b.inputs and a.output == b.output)


# =============================================================================================
# Child processes: one (workload, size) each.
# =============================================================================================

def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _api(name: str) -> Any:
    """A helper of gradcalc.api that gradients() uses between the engine calls (public from
    commit 12f8fae on, underscored before)."""
    return getattr(api, name, None) or getattr(api, "_" + name)


def _engine_once(dag: Dag, at: dict[str, float]) -> tuple[dict[str, float], list[float]]:
    """cone, forward, active_nodes, counting_pass, backward, timed separately (the small
    untimed steps between them are what gradients() does between the same calls). From
    commit 38f0688 on, the engine works out active nodes and counts in one call, engine.plan
    (timed as 'active', with 'count' 0: the report adds the two), before forward, and
    engine.run is the backward pass."""
    t: dict[str, float] = {}
    output = dag.named[dag.output]
    t0 = pc()
    within = engine.cone(dag, [output])
    t["cone"] = pc() - t0
    targets = _api("default_targets")(dag, output, within)
    values = _api("leaf_values")(dag, at)
    if hasattr(engine, "plan"):
        t0 = pc()
        question = engine.plan(dag, output, targets, within)
        t["active"] = pc() - t0
        t["count"] = 0.0
        t0 = pc()
        vals = engine.forward(dag, values, question.needed)
        t["forward"] = pc() - t0
        t0 = pc()
        done = engine.run(question, vals)
        t["backward"] = pc() - t0
        return t, done.gradients
    t0 = pc()
    vals = engine.forward(dag, values, within)
    t["forward"] = pc() - t0
    t0 = pc()
    active = engine.active_nodes(dag, targets.values(), within)
    t["active"] = pc() - t0
    t0 = pc()
    pending = engine.counting_pass(dag, output, active)
    t["count"] = pc() - t0
    t0 = pc()
    grads = engine.backward(dag, vals, output, pending, active)
    t["backward"] = pc() - t0
    assert not any(pending)
    return t, grads


def child_time(spec: dict[str, Any]) -> dict[str, Any]:
    """One (workload, size). Every repeat runs, interleaved: the gradcalc pipeline with the
    collector on (as the library runs: parse() disables it inside, build and the engine run
    with it on), the same pipeline with it off throughout, Lark's default parse with it on and
    off, and the straight-line functions. Nothing is collected between parse and build, so GC
    work that parse() defers lands where it lands in gradients(): in build."""
    name, size, repeat = spec["workload"], spec["size"], spec["repeat"]
    skip_parse, skip_straight = spec["skip_parse"], spec["skip_straight"]
    out: dict[str, Any] = {"workload": name, "size": size, "repeat": repeat, "notes": []}
    out["gc_paused_throughout"] = gc_paused_throughout()
    t0 = pc()
    wl = WORKLOADS[name](size)
    out["gen_s"] = pc() - t0
    out["notes"] += wl.notes
    out["chars"] = len(wl.text)
    out["tokens"] = count_tokens(wl.text)
    out["lines"] = wl.text.count("\n")
    _log(f"{name} {size}: generated {out['chars']:,} chars, {out['tokens']:,} tokens")

    # The directly built AST must give the very graph the parser's AST gives (checked at a
    # small size always; it is what the engine runs on when parsing is skipped).
    small = WORKLOADS[name](min(size, 2000))
    assert same_dag(build(parse(small.text)), build(small.make_ast())), "direct AST differs"
    out["direct_ast_checked_at"] = min(size, 2000)
    del small
    parse("A = 1")  # load Lark and the cached tables outside the timed region
    if skip_parse:
        out["notes"].append("parse skipped at this size: build and the engine stages ran on a "
                            "directly constructed AST (the same graph: checked at 2,000 nodes), "
                            "and gradients() was called on that AST")
    else:
        lark_parser, rec, nonrec = default_lark()
        transformer = rec
        lark_inline = inline_lark()

    # Straight-line Python: compiled once, outside every timed region (verified further down).
    straight = None
    if not skip_straight:
        t0 = pc()
        fns = []
        for src in wl.make_straight():
            ns: dict[str, Any] = {"sin": math.sin, "cos": math.cos, "tanh": math.tanh}
            exec(compile(src, f"<straight-line {name}>", "exec"), ns)
            fns.append(ns["f"])
        out["straight_compile_s"] = pc() - t0
        straight = fns
        _log(f"{name} {size}: straight-line compiled in {out['straight_compile_s']:.1f}s")
    else:
        out["notes"].append("straight-line baseline skipped at this size")

    keys = ["parse", "build", "free_ast", "cone", "forward", "active", "count", "backward"]
    times: dict[str, list[float]] = {k + sfx: [] for k in keys for sfx in ("", "_gcoff")}
    for k in ("lark_tree", "lark_transform", "lark_tree_gcoff", "lark_transform_gcoff",
              "lark_inline", "lark_inline_gcoff", "straight_fwd", "straight_full"):
        times[k] = []
    ref_dag: Dag | None = None
    for r in range(repeat):
        for gc_off in (False, True):
            sfx = "_gcoff" if gc_off else ""
            gc.collect()
            if gc_off:
                gc.disable()
            if skip_parse:
                program = wl.make_ast()
            else:
                t0 = pc()
                program = parse(wl.text)
                times["parse" + sfx].append(pc() - t0)
            t0 = pc()
            dag = build(program)
            t1 = pc()
            del program  # gradients() drops the AST here too
            t2 = pc()
            t, _ = _engine_once(dag, wl.at)
            gc.enable()
            times["build" + sfx].append(t1 - t0)
            times["free_ast" + sfx].append(t2 - t1)
            for k, v in t.items():
                times[k + sfx].append(v)
            if "nodes" not in out:  # graph figures, once
                out["nodes"] = len(dag)
                out["edges"] = dag.edge_count
                out["merged"] = dag.merged
                output = dag.named[dag.output]
                within = engine.cone(dag, [output])
                out["cone_nodes"] = sum(within)
                out["op_nodes_evaluated"] = sum(
                    1 for i in range(len(dag)) if within[i] and dag.args[i])
                del within
            if r == 0 and not gc_off and not skip_parse:
                ref_dag = dag  # for the checks of Lark's ASTs just below, then dropped
            del dag
        if not skip_parse:
            for gc_off in (False, True):
                sfx = "_gcoff" if gc_off else ""
                gc.collect()
                if gc_off:
                    gc.disable()
                t0 = pc()
                tree = lark_parser.parse(wl.text)
                t1 = pc()
                try:
                    statements = transformer.transform(tree)
                except RecursionError:
                    assert transformer is rec
                    transformer = nonrec
                    out["notes"].append(
                        "lark.Transformer raised RecursionError (recursion limit "
                        f"{sys.getrecursionlimit()}); used Transformer_NonRecursive (the "
                        "failed attempt is not timed)")
                    t1 = pc()
                    statements = transformer.transform(tree)
                t2 = pc()
                gc.enable()
                times["lark_tree" + sfx].append(t1 - t0)
                times["lark_transform" + sfx].append(t2 - t1)
                if ref_dag is not None and not gc_off:
                    out["default_ast_same_dag"] = same_dag(
                        ref_dag, build(from_tree(statements, Source(""))))
                    assert out["default_ast_same_dag"], "Lark-default AST builds another graph"
                del tree, statements
            out["transformer"] = ("Transformer_NonRecursive" if transformer is nonrec
                                  else "Transformer")
            # Lark's best way: the inline transformer, called in the LALR reductions.
            for gc_off in (False, True):
                sfx = "_gcoff" if gc_off else ""
                gc.collect()
                if gc_off:
                    gc.disable()
                t0 = pc()
                statements = lark_inline.parse(wl.text)
                t1 = pc()
                gc.enable()
                times["lark_inline" + sfx].append(t1 - t0)
                if ref_dag is not None and not gc_off:
                    out["inline_ast_same_dag"] = same_dag(
                        ref_dag, build(from_tree(statements, Source(""))))
                    assert out["inline_ast_same_dag"], "Lark-inline AST builds another graph"
                del statements
            ref_dag = None  # nothing big outlives its repeat: it would slow the GC
        if straight:
            for key, fn in zip(("straight_fwd", "straight_full"), straight, strict=True):
                gc.collect()
                t0 = pc()
                fn(wl.straight_inp, False)
                times[key].append(pc() - t0)
        _log(f"{name} {size}: repeat {r + 1}/{repeat}: "
             + ("" if skip_parse else f"parse {times['parse'][-1]:.3f}s ")
             + f"build {times['build'][-1]:.3f}s (gc off {times['build_gcoff'][-1]:.3f}s) "
             f"fwd {times['forward'][-1]:.3f}s bwd {times['backward'][-1]:.3f}s"
             + ("" if skip_parse else
                f"; Lark default {times['lark_tree'][-1] + times['lark_transform'][-1]:.3f}s"
                f", inline {times['lark_inline'][-1]:.3f}s"))
    assert ref_dag is None
    # The whole gradients() call, from text (or from the AST when parsing is skipped).
    times["gradients"] = []
    times["gc_after_gradients"] = []
    subject: Any = wl.make_ast() if skip_parse else wl.text
    result = None
    for _ in range(repeat):
        del result
        gc.collect()
        t0 = pc()
        result = api.gradients(subject, at=wl.at)
        t1 = pc()
        gc.collect()  # what is left to the caller: one full scan of the graph and the result
        times["gradients"].append(t1 - t0)
        times["gc_after_gradients"].append(pc() - t1)
    assert result is not None
    out["targets"] = len(result.gradients)
    out["nonfinite_gradients"] = sum(1 for v in result.gradients.values()
                                     if not math.isfinite(v))
    out["warnings"] = len(result.warnings)
    out["value"] = result.value

    # The straight-line result must be gradcalc's result.
    if straight:
        loc = straight[1](wl.straight_inp, True)
        assert math.isclose(loc["out"], result.value, rel_tol=1e-12), (loc["out"], result.value)
        worst, exact = 0.0, 0
        for n, gv in result.gradients.items():
            sv = loc[wl.gvar(n)]
            if gv == sv:
                exact += 1
                continue
            big = max(abs(gv), abs(sv))
            if big > 1e-250:
                worst = max(worst, abs(gv - sv) / big)
        assert worst <= 1e-9, f"straight-line gradients differ from gradcalc's (rel {worst})"
        out["straight_checked"] = len(result.gradients)
        out["straight_exact"] = exact
        out["straight_max_rel_diff"] = worst
        del loc
    out["times"] = times
    return out


def child_mem(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS (ru_maxrss, cumulative) after each stage, as gradients() holds things: the AST
    is freed after build."""
    name, size, skip_parse = spec["workload"], spec["size"], spec["skip_parse"]
    parse("A = 1")
    rss = {"imports": _maxrss_kib()}
    wl = WORKLOADS[name](size)
    rss["text"] = _maxrss_kib()
    program = wl.make_ast() if skip_parse else parse(wl.text)
    rss["parse"] = _maxrss_kib()
    dag = build(program)
    rss["build"] = _maxrss_kib()
    del program
    _engine_once(dag, wl.at)
    rss["eval"] = _maxrss_kib()
    return {"rss_kib": rss, "nodes": len(dag)}


def child_mem_lark(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of Lark's default approach: parse tree, then the transformer."""
    lark_parser, rec, nonrec = default_lark()
    rss = {"imports": _maxrss_kib()}
    wl = WORKLOADS[spec["workload"]](spec["size"])
    rss["text"] = _maxrss_kib()
    tree = lark_parser.parse(wl.text)
    rss["tree"] = _maxrss_kib()
    try:
        statements = rec.transform(tree)
    except RecursionError:
        statements = nonrec.transform(tree)
    rss["transform"] = _maxrss_kib()
    del statements
    return {"rss_kib": rss}


CHILD_MODES = {"time": child_time, "mem": child_mem, "mem-lark": child_mem_lark}


def run_child(spec: dict[str, Any], timeout: float) -> tuple[dict[str, Any] | None, Any]:
    """Run one child, return (its JSON, its rusage from wait4) -- RUSAGE_CHILDREN would give the
    largest peak of all children so far, wait4 gives this child's own."""
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        data = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        timer.cancel()
    if proc.returncode != 0:
        print(f"  child {spec} failed with exit code {proc.returncode}", file=sys.stderr)
        return None, usage
    return json.loads(data.decode().strip().splitlines()[-1]), usage


# =============================================================================================
# Cold start.
# =============================================================================================

def cold_start(runs: int) -> dict[str, Any]:
    exe = sys.executable
    script = Path(exe).parent / "gradcalc"
    if not script.exists():
        found = shutil.which("gradcalc")
        script = Path(found) if found else script
    cmds = {
        "python -c pass": [exe, "-c", "pass"],
        "python -c 'import lark, rich, typer'": [exe, "-c", "import lark, rich, typer"],
        "python -c 'import gradcalc.cli' (extra)": [exe, "-c", "import gradcalc.cli"],
        "gradcalc 'OUT = A*2 + B*3' --at A=1 --at B=1": [
            str(script), "OUT = A*2 + B*3", "--at", "A=1", "--at", "B=1"],
    }
    # Warm-up (bytecode caches, the grammar table cache), and a check of the output.
    for key, cmd in cmds.items():
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        if key.startswith("gradcalc"):
            assert done.stdout.split() == ["A", "2", "B", "3"], done.stdout
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for key, cmd in cmds.items():  # interleaved, so drift hits all alike
            t0 = pc()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[key].append(pc() - t0)
    with open(script) as f:
        shebang = f.readline().strip()
    return {"runs": runs, "script": str(script), "shebang": shebang, "times": times}


# =============================================================================================
# Report.
# =============================================================================================

def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def medians(res: dict[str, Any]) -> dict[str, float]:
    m = {k: _median(v) for k, v in res["times"].items()}
    for sfx in ("", "_gcoff"):
        m["fwd" + sfx] = m["cone" + sfx] + m["forward" + sfx]
        m["cnt" + sfx] = m["active" + sfx] + m["count" + sfx]
        m["bfb" + sfx] = m["build" + sfx] + m["fwd" + sfx] + m["cnt" + sfx] + m["backward" + sfx]
        m["eval" + sfx] = m["fwd" + sfx] + m["cnt" + sfx] + m["backward" + sfx]
        m["lark" + sfx] = m["lark_tree" + sfx] + m["lark_transform" + sfx]
    # 'P' + key: the pipeline run the way gradients() runs it (see gc_paused_throughout).
    policy = "_gcoff" if res.get("gc_paused_throughout") else ""
    for k in ("parse", "build", "free_ast", "fwd", "cnt", "backward", "bfb", "eval"):
        m["P" + k] = m[k + policy]
    return m


def gc_paused_throughout() -> bool:
    """Whether gradients() keeps the cyclic collector off from parse to backward (gradcalc's
    gcpause, from commit 04e2de4 on); before that only parse() paused it."""
    import importlib.util

    return importlib.util.find_spec("gradcalc.gcpause") is not None


CORE_FILES = ("ast.py", "dag.py", "engine.py", "api.py", "parse.py", "ops.py", "errors.py",
              "gcpause.py")


def core_digest() -> str:
    """A digest of the modules the measured stages run, to tell whether they changed during
    a run (the whole package may change for unrelated reasons, e.g. the CLI)."""
    import hashlib

    h = hashlib.sha256()
    for name in CORE_FILES:
        path = REPO / "gradcalc" / name
        h.update(name.encode() + (path.read_bytes() if path.exists() else b"-"))
    h.update((REPO / "grammar" / "gradcalc.lark").read_bytes())
    return h.hexdigest()[:12]


def git_state() -> str:
    """The commit measured, and whether the library's files differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                "gradcalc", "grammar"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes in gradcalc/ or grammar/" if dirty else "")


def report(args: argparse.Namespace, results: list[dict[str, Any]], cold: dict[str, Any] | None
           ) -> str:
    import lark

    out: list[str] = []
    w = out.append
    w("# gradcalc core benchmark")
    w("")
    w("```")
    w("$ " + shlex.join([sys.executable, *sys.argv]))
    w(f"cwd: {os.getcwd()}")
    w(f"gradcalc commit: {args._git_start}"
      + ("" if args._git_end == args._git_start else f" at the start, {args._git_end} at the end"))
    w(f"core modules ({', '.join(CORE_FILES)}, the grammar) digest {args._core_start}"
      + (", unchanged during the run" if args._core_end == args._core_start else
         f" at the start, {args._core_end} at the end: THE MEASURED CODE CHANGED DURING THE RUN"))
    w(f"python {platform.python_version()} ({platform.python_implementation()}), lark "
      f"{lark.__version__}, {platform.platform()}, {os.cpu_count()} CPUs, "
      f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
    w("```")
    w("")
    w("Each (workload, size) ran in a fresh subprocess. Figures are medians of the repeats "
      "(n = repeats column); µs/node is divided by the real DAG node count. Stages are timed "
      "back to back as gradients() runs them (parse, build, drop the AST, cone, forward, "
      "active_nodes, counting_pass, backward), with no gc.collect() in between, twice per "
      "repeat: with the cyclic collector off throughout, and with it on between the library's "
      "calls (each library function then pauses it where it does itself). The stage table "
      "shows the one gradients() does: "
      + ("the collector off throughout (gradcalc.gcpause). "
         if any(r.get("gc_paused_throughout") for r in results)
         else "the collector off inside parse() only. ")
      + "The GC table compares the two. "
      "'fwd' = cone + forward; 'count' = active_nodes + counting_pass (engine.plan from "
      "commit 38f0688 on); "
      "'b+f+b' = build + fwd + count + backward; 'bwd/fwd' = backward / fwd.")
    w("")
    rows = []
    for res in results:
        m = medians(res)
        n = res["nodes"]

        def us(k: str, m: dict[str, float] = m, n: int = n) -> str:
            return fmt(m[k] / n * 1e6)

        stages = (m["Pparse"] if res["times"]["parse"] else 0.0) + m["Pbfb"] + m["Pfree_ast"]

        rows.append([res["workload"], f"{res['size']:,}", f"{n:,}", f"{res['edges']:,}",
                     f"{res['tokens']:,}", res["repeat"], us("Pparse"), us("Pbuild"), us("Pfwd"),
                     us("Pcnt"), us("Pbackward"), us("Pbfb"), fmt(m["Pbackward"] / m["Pfwd"]),
                     us("gradients"), fmt(m["gradients"] / stages),
                     fmt(res["tokens"] / m["Pparse"] / 1e3)])
    w("## Stages (µs per DAG node, median)")
    w("")
    w(table(["workload", "size", "nodes", "edges", "tokens", "n", "parse", "build", "fwd",
             "count", "bwd", "b+f+b", "bwd/fwd", "gradients()", "gradients() / sum of stages",
             "parse ktok/s"], rows))
    w("")

    # GC effect.
    rows = []
    for res in results:
        m = medians(res)
        n = res["nodes"]
        rows.append([res["workload"], f"{res['size']:,}"]
                    + [fmt(m[k + "_gcoff"] / m[k]) for k in ("parse", "build", "fwd", "cnt",
                                                              "backward")]
                    + [fmt(m["build"] / n * 1e6), fmt(m["build_gcoff"] / n * 1e6),
                       fmt(m["Pfree_ast"] / n * 1e6),
                       fmt(m["bfb"] / n * 1e6), fmt(m["bfb_gcoff"] / n * 1e6),
                       fmt(m["gc_after_gradients"] / n * 1e6)])
    w("## GC: collector off throughout / on between the library's calls")
    w("")
    w("Below 1: the collector costs that much in that stage. Objects allocated while it is "
      "paused still count towards the next collection, which runs (and walks everything "
      "new) in whatever comes next. 'drop AST' = freeing the AST after build (gradients() "
      "does it too; not in b+f+b). 'gc.collect() after' = one full collection right after "
      "gradients() returns: the scan of the graph and result that a paused collector leaves "
      "to the caller (not in gradients()).")
    w("")
    w(table(["workload", "size", "parse off/on", "build off/on", "fwd off/on",
             "count off/on", "bwd off/on", "build µs/node gc on", "gc off",
             "drop AST µs/node", "b+f+b µs/node gc on", "gc off",
             "gc.collect() after gradients() µs/node"], rows))
    w("")

    # Scaling.
    rows = []
    by_wl: dict[str, list[dict[str, Any]]] = {}
    for res in results:
        by_wl.setdefault(res["workload"], []).append(res)
    for name, rs in by_wl.items():
        rs = sorted(rs, key=lambda r: r["size"])
        for a, b in itertools.pairwise(rs):
            ma, mb = medians(a), medians(b)
            rows.append([name, f"{a['size']:,} → {b['size']:,}", fmt(b["nodes"] / a["nodes"])]
                        + [fmt(mb[k] / ma[k]) for k in ("Pparse", "Pbuild", "Pfwd", "Pcnt",
                                                        "Pbackward", "gradients")])
    if rows:
        w("## Scaling: time ratio between consecutive sizes (linear = the nodes ratio)")
        w("")
        w(table(["workload", "sizes", "nodes ×", "parse ×", "build ×", "fwd ×", "count ×",
                 "bwd ×", "gradients() ×"], rows))
        w("")

    # Baseline A.
    rows = []
    for res in results:
        m = medians(res)
        if not res["times"]["parse"]:
            continue
        tok = res["tokens"]
        rows.append([res["workload"], f"{res['size']:,}", fmt(tok / m["Pparse"] / 1e3),
                     fmt(tok / m["lark"] / 1e3),
                     f"{100 * m['lark_tree'] / m['lark']:.0f}%",
                     fmt(tok / m["lark_gcoff"] / 1e3),
                     fmt(m["lark"] / m["Pparse"]), fmt(m["lark_gcoff"] / m["parse_gcoff"]),
                     res.get("transformer", "?"),
                     "yes" if res.get("default_ast_same_dag") else "NO"])
    if rows:
        w("## Baseline A: Lark's default (tree + Transformer) on the same grammar file")
        w("")
        w("ktok/s = thousands of tokens per second. 'ours' = gradcalc.parse.parse(), which "
          "pauses the collector itself. Speedup = default time / ours (above 1: ours is "
          "faster): against the default run as a default user runs it (collector on), and "
          "like for like with the collector off for both. 'tree %' = share of the default's "
          "time spent building the parse tree. 'same DAG' = the default's AST builds exactly "
          "the same graph as ours.")
        w("")
        w(table(["workload", "size", "ours ktok/s", "default ktok/s (gc on)", "tree %",
                 "default ktok/s (gc off)", "speedup vs default gc on",
                 "speedup, both gc off", "transformer", "same DAG"], rows))
        w("")

    # Parse baselines side by side: ours, Lark's inline transformer, Lark's tree + Transformer.
    rows = []
    for res in results:
        m = medians(res)
        if not res["times"]["parse"] or not res["times"].get("lark_inline"):
            continue
        tok = res["tokens"]
        rows.append([res["workload"], f"{res['size']:,}", fmt(tok / m["Pparse"] / 1e3),
                     fmt(tok / m["lark_inline"] / 1e3), fmt(tok / m["lark"] / 1e3),
                     fmt(m["lark_inline"] / m["Pparse"]), fmt(m["lark"] / m["Pparse"]),
                     fmt(m["lark_inline_gcoff"] / m["parse_gcoff"]),
                     fmt(m["lark_gcoff"] / m["parse_gcoff"]),
                     "yes" if res.get("inline_ast_same_dag") else "NO"])
    if rows:
        w("## Parse: ours against Lark's inline transformer and Lark's tree + Transformer")
        w("")
        w("'inline' = `Lark(grammar, parser=\"lalr\", keep_all_tokens=True, transformer=...)`: "
          "the transformer runs in Lark's own LALR reductions and makes exactly our AST (spans "
          "of parentheses included), no tree; the best way to use Lark here. 'tree+T' = "
          "baseline A. '÷ ours' = their time / ours (above 1: ours is faster), first as each "
          "runs by default (ours pauses the collector itself, Lark's run with it on), then "
          "with the collector off for both. 'same DAG' = the inline AST builds exactly our "
          "graph.")
        w("")
        w(table(["workload", "size", "ours ktok/s", "inline ktok/s", "tree+T ktok/s",
                 "inline ÷ ours", "tree+T ÷ ours", "inline ÷ ours, gc off",
                 "tree+T ÷ ours, gc off", "same DAG"], rows))
        w("")

    # Baseline B.
    rows = []
    for res in results:
        m = medians(res)
        if not res["times"]["straight_full"]:
            continue
        n = res["nodes"]
        adj = m["straight_full"] - m["straight_fwd"]
        rows.append([res["workload"], f"{res['size']:,}", fmt(m["straight_fwd"] / n * 1e6),
                     fmt(m["straight_full"] / n * 1e6), fmt(m["Peval"] / n * 1e6),
                     fmt(m["Pfwd"] / m["straight_fwd"]),
                     fmt((m["Pcnt"] + m["Pbackward"]) / adj) if adj > 0 else "-",
                     fmt(m["Peval"] / m["straight_full"]),
                     f"{res['straight_checked']:,} ({res['straight_exact']:,} bit-equal, "
                     f"max rel {res['straight_max_rel_diff']:.1e})",
                     fmt(res["straight_compile_s"], 2)])
    if rows:
        w("## Baseline B: straight-line Python (same program, forward then adjoint statements)")
        w("")
        w("µs per gradcalc DAG node. gradcalc eval = fwd + count + bwd on a built DAG. "
          "'adjoint' = straight full − straight forward. 'checked' = gradients compared with "
          "gradcalc's (asserted rel ≤ 1e-9). Compile time is outside the timed region.")
        w("")
        w(table(["workload", "size", "straight fwd", "straight fwd+adj", "gradcalc eval",
                 "fwd: gradcalc/straight", "adjoint: gradcalc (count+bwd)/straight",
                 "eval: gradcalc/straight", "checked", "compile s"], rows))
        w("")

    # Memory.
    rows = []
    for res in results:
        mem = res.get("mem")
        if not mem:
            continue
        r = mem["rss_kib"]
        n = res["nodes"]

        def mib(k: str, r: dict[str, int] = r) -> str:
            return fmt(r[k] / 1024)

        lark_mem = res.get("mem_lark")
        ratio = "-"
        if lark_mem and "parse" in r and r["parse"] > r["text"]:
            lr = lark_mem["rss_kib"]
            ratio = fmt((lr["transform"] - lr["text"]) / (r["parse"] - r["text"]))
        rows.append([res["workload"], f"{res['size']:,}", mib("imports"), mib("text"),
                     mib("parse"), mib("build"), mib("eval"), fmt(mem["wait4_maxrss_kib"] / 1024),
                     f"{(r['eval'] - r['text']) * 1024 / n:,.0f}", ratio])
    if rows:
        w("## Peak memory (RSS, MiB)")
        w("")
        w("Measured in a separate fresh subprocess per row: ru_maxrss (a running peak) read by "
          "the child after each stage, and the child's final peak from os.wait4 (not "
          "tracemalloc). Stages as gradients() holds them (the AST is freed after build). "
          "'B/node' = (peak after eval − after text) / nodes. 'default/ours parse' = the "
          "growth of the peak during Lark's default parse+transform over ours. Where parsing "
          "was skipped, '+parse' is the directly built AST.")
        w("")
        w(table(["workload", "size", "imports", "+text", "+parse", "+build", "+eval",
                 "peak (wait4)", "B/node", "default/ours parse"], rows))
        w("")

    if cold:
        rows = []
        meds = {k: _median(v) for k, v in cold["times"].items()}
        base_imp = meds["python -c 'import lark, rich, typer'"]
        base_pass = meds["python -c pass"]
        for k, v in cold["times"].items():
            rows.append([f"`{k}`", fmt(meds[k] * 1e3), fmt(min(v) * 1e3),
                         fmt(meds[k] / base_imp), fmt(meds[k] / base_pass)])
        w(f"## Cold start ({cold['runs']} interleaved runs each, after one warm-up; "
          f"script {cold['script']}, shebang `{cold['shebang']}`)")
        w("")
        w(table(["command", "median ms", "min ms", "÷ import lark,rich,typer", "÷ pass"], rows))
        w("")

    notes = []
    for res in results:
        for note in res["notes"]:
            notes.append(f"- {res['workload']} {res['size']:,}: {note}")
        if res.get("warnings") or res.get("nonfinite_gradients"):
            notes.append(f"- {res['workload']} {res['size']:,}: {res['warnings']} warnings, "
                         f"{res['nonfinite_gradients']} non-finite gradients")
    for fail in getattr(args, "_failures", []):
        notes.append(f"- FAILED: {fail}")
    if notes:
        w("## Notes")
        w("")
        out.extend(notes)
        w("")
    return "\n".join(out)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--_child":
        spec = json.loads(sys.argv[2])
        result = CHILD_MODES[spec["mode"]](spec)
        print(json.dumps(result), flush=True)
        return

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=None,
                   help="comma-separated node counts (default 10000,100000; --quick: 1000,10000)")
    p.add_argument("--repeat", type=int, default=None,
                   help="repeats per measurement (default 5 below 20,000 nodes, else 3)")
    p.add_argument("--quick", action="store_true", help="small sizes, 3 repeats")
    p.add_argument("--workloads", default=",".join(WORKLOAD_NAMES),
                   help="comma-separated subset of " + ",".join(WORKLOAD_NAMES))
    p.add_argument("--skip-parse-from", type=int, default=None, metavar="N",
                   help="at sizes >= N do not parse text (ours or Lark's): build the DAG from a "
                   "directly constructed AST")
    p.add_argument("--skip-straight-from", type=int, default=None, metavar="N",
                   help="at sizes >= N skip the straight-line Python baseline")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--cold-runs", type=int, default=10,
                   help="runs of each cold-start command (default 10; 0 skips cold start)")
    p.add_argument("--child-timeout", type=float, default=3600.0, metavar="SECONDS")
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = p.parse_args()
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "10000,100000"))
             .replace("_", "").split(",")]
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    for n in names:
        if n not in WORKLOADS:
            p.error(f"unknown workload {n!r}")
    args._failures = []
    args._git_start = git_state()
    args._core_start = core_digest()
    # A timeout (SIGTERM) still prints what was measured so far.
    signal.signal(signal.SIGTERM, _interrupt)

    t_start = pc()
    results = []
    try:
        for name in names:
            for size in sizes:
                repeat = args.repeat or (3 if args.quick or size >= 20000 else 5)
                skip_parse = args.skip_parse_from is not None and size >= args.skip_parse_from
                skip_straight = (args.skip_straight_from is not None
                                 and size >= args.skip_straight_from)
                spec = {"mode": "time", "workload": name, "size": size, "repeat": repeat,
                        "skip_parse": skip_parse, "skip_straight": skip_straight}
                print(f"[{pc() - t_start:6.0f}s] {name} {size:,}: timing", file=sys.stderr,
                      flush=True)
                res, _ = run_child(spec, args.child_timeout)
                if res is None:
                    args._failures.append(f"{name} {size}: timing child")
                    continue
                if not args.no_memory:
                    print(f"[{pc() - t_start:6.0f}s] {name} {size:,}: memory", file=sys.stderr,
                          flush=True)
                    mem, usage = run_child({**spec, "mode": "mem"}, args.child_timeout)
                    if mem is not None:
                        mem["wait4_maxrss_kib"] = usage.ru_maxrss
                        res["mem"] = mem
                    if not skip_parse:
                        mem_l, usage = run_child({**spec, "mode": "mem-lark"}, args.child_timeout)
                        if mem_l is not None:
                            mem_l["wait4_maxrss_kib"] = usage.ru_maxrss
                            res["mem_lark"] = mem_l
                results.append(res)
    except KeyboardInterrupt:
        args._failures.append("interrupted (timeout or Ctrl-C): the report covers what was "
                              "measured before")
        args.cold_runs = 0
    cold = None
    if args.cold_runs > 0:
        print(f"[{pc() - t_start:6.0f}s] cold start", file=sys.stderr, flush=True)
        cold = cold_start(args.cold_runs)
    args._git_end = git_state()
    args._core_end = core_digest()
    text = report(args, results, cold)
    text += f"\nTotal benchmark wall time: {pc() - t_start:.0f} s\n"
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": shlex.join([sys.executable, *sys.argv]),
                       "git": [args._git_start, args._git_end],
                       "python": platform.python_version(), "results": results,
                       "cold_start": cold}, f, indent=1)


if __name__ == "__main__":
    main()
