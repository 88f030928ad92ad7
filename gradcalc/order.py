"""Definitions in dependency order, without recursion: for statements that use names defined
later, and for functions that call each other (a loop among them is an error)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

__all__ = ["dependency_order"]


def dependency_order(names: Iterable[str], uses: Mapping[str, list[int]],
                     used: Callable[[int], str],
                     loop: Callable[[list[str], str, int], Exception]) -> list[str]:
    """``names`` with every name after the ones it uses (source order where free), by a
    depth-first walk with an explicit stack. ``uses[name]`` are the nodes through which a
    name uses others, ``used(node)`` the name a node uses; a use that closes a loop raises
    ``loop(path, closing name, node)``."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in names:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            name, index = stack[-1]
            nodes = uses[name]
            if index == len(nodes):
                stack.pop()
                state[name] = 2
                order.append(name)
                continue
            stack[-1] = (name, index + 1)
            node = nodes[index]
            other = used(node)
            seen = state.get(other)
            if seen == 1:
                raise loop([n for n, _ in stack], other, node)
            if seen is None:
                state[other] = 1
                stack.append((other, 0))
    return order
