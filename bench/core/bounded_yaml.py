"""YAML read with a bound on what its aliases expand to, checked before anything is expanded.

A YAML alias (``*a``) repeats a node; nine levels of ten aliases each (a 1 KB "billion laughs" file) expand to a
billion values, and PyYAML builds them all (minutes and gigabytes). PyYAML composes the document first into a
graph where an alias is the node it names, shared, not a copy; the size of its expansion is counted on that graph,
each node once (so the count costs as much as the file is long), and a document larger than :data:`MAX_NODES`
expanded is refused before it is constructed.
"""

from __future__ import annotations

import yaml

MAX_NODES = 100_000  # the largest suite (full.yaml) expands to a few hundred; a config.yaml to about a hundred


class TooLarge(ValueError):
    """The document expands to more than the bound (``nodes`` counts it, up to where counting stopped; None: it
    contains itself)."""

    def __init__(self, nodes: int | None, limit: int):
        super().__init__(f"its aliases expand to more than {limit:,} values ({nodes:,} counted)" if nodes else
                         "an alias inside its own anchor expands without end")
        self.nodes, self.limit = nodes, limit


def expanded_size(root: yaml.Node, limit: int = MAX_NODES) -> int:
    """How many nodes ``root`` stands for with every alias expanded; raises :class:`TooLarge` past ``limit``.
    Iterative (a deep document is PyYAML's RecursionError, not ours) and memoized per node."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, not yet counted: meeting one again is a node that contains itself
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in open_nodes:
                raise TooLarge(None, limit)
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        open_nodes.discard(id(node))
        size = 1 + sum(sizes[id(child)] for child in children)
        if size > limit:
            raise TooLarge(size, limit)
        sizes[id(node)] = size
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def safe_load(text: str, limit: int = MAX_NODES):
    """``yaml.safe_load(text)``, refusing (:class:`TooLarge`) a document whose aliases expand past ``limit``."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node, limit)
        return loader.construct_document(node)
    finally:
        loader.dispose()
