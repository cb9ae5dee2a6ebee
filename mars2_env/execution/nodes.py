"""LeetCode's linked-list and binary-tree helpers, and how their values cross the assert bridge.

rllm's LeetCode rows are check programs such as
``assert is_same_list(candidate(head=list_node([1, 2])), list_node([2, 1]))``: the program
receives ``ListNode`` / ``TreeNode`` values built from plain lists and returns one, and the
check compares it with ``is_same_list`` / ``is_same_tree``. rllm defines these helpers (same
names and behaviour) before the program and the check, in one namespace.

Here the check runs in the assert harness's test process (see `bridge`), so the helpers it
calls and the expected values it builds are the test's own: a program that rebinds
``is_same_list`` or makes ``list_node`` return a shared object changes nothing the test uses.
The two directions:

* test -> program: a test-side node passed as an argument crosses as a *node graph*
  (`encode_nodes`), a flat list of ``[kind, value, links...]`` entries with links by index, so
  shared nodes, cycles and long lists cross without recursion; the program side rebuilds it
  (`decode_nodes`) with the program's own ``ListNode`` / ``TreeNode`` class when it defines one
  (rllm's ``list_node`` looks the class up in the shared namespace, so it builds the program's
  class too), else the prelude's.
* program -> test: a returned node stays in the program; the test holds a `bridge.Remote` and
  `is_same_list` / `is_same_tree` walk it by attribute reads, each value crossing as data and
  compared in the test process. The walk follows the expected (finite, test-built) structure,
  so a cyclic or endless answer ends the comparison instead of looping.

The comparisons test ``is None`` where rllm tests truth values (``while l1 and l2``): the same
answer for any node, and a program object is never asked for its truth value.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any


class ListNode:
    """A singly-linked list node (LeetCode's definition)."""

    def __init__(self, val=0, next=None):
        self.val = val
        self.next = next


class TreeNode:
    """A binary tree node (LeetCode's definition)."""

    def __init__(self, val=0, left=None, right=None):
        self.val = val
        self.left = left
        self.right = right


def list_node(values) -> ListNode | None:
    """The linked list holding ``values`` in order (None for no values)."""
    dummy = ListNode(0)
    tail = dummy
    for value in values:
        tail.next = ListNode(value)
        tail = tail.next
    return dummy.next


def tree_node(values) -> TreeNode | None:
    """The binary tree of LeetCode's level-order list (``None`` marks a missing child)."""
    if not values:
        return None
    root = TreeNode(values[0])
    queue, i = deque([root]), 1
    while queue and i < len(values):
        node = queue.popleft()
        if values[i] is not None:
            node.left = TreeNode(values[i])
            queue.append(node.left)
        i += 1
        if i < len(values) and values[i] is not None:
            node.right = TreeNode(values[i])
            queue.append(node.right)
        i += 1
    return root


def is_same_list(a, b) -> bool:
    """Whether two linked lists hold equal values in the same order."""
    while a is not None and b is not None:
        if a.val != b.val:
            return False
        a, b = a.next, b.next
    return a is None and b is None


def is_same_tree(p, q) -> bool:
    """Whether two binary trees have the same shape and equal values (left subtree first)."""
    stack = [(p, q)]
    while stack:
        p, q = stack.pop()
        if p is None and q is None:
            continue
        if p is None or q is None or not p.val == q.val:
            return False
        stack.append((p.right, q.right))
        stack.append((p.left, q.left))
    return True


# kind tag -> (class, link attributes), for the graphs that cross the bridge
_KINDS: dict[str, tuple[type, tuple[str, ...]]] = {
    "L": (ListNode, ("next",)),
    "T": (TreeNode, ("left", "right")),
}
_TAG_OF = {cls: tag for tag, (cls, _) in _KINDS.items()}
NODE_TYPES = tuple(_TAG_OF)


def encode_nodes(root: Any, encode: Callable[[Any], Any]) -> list:
    """The node graph reachable from ``root`` (a `ListNode` or `TreeNode` of this module) as
    ``[[kind, encode(val), link, ...], ...]``, root first. A link is None, the index of another
    node, or ``[encode(value)]`` for an object that is not a node."""
    index: dict[int, int] = {id(root): 0}
    order, entries = [root], []
    for node in order:  # grows while we walk: breadth first, no recursion
        tag = _TAG_OF[type(node)]
        entry = [tag, encode(node.val)]
        for attr in _KINDS[tag][1]:
            child = getattr(node, attr, None)
            if child is None:
                entry.append(None)
            elif type(child) in _TAG_OF:
                k = index.get(id(child))
                if k is None:
                    k = index[id(child)] = len(order)
                    order.append(child)
                entry.append(k)
            else:
                entry.append([encode(child)])
        entries.append(entry)
    return entries


def decode_nodes(entries: Any, decode: Callable[[Any], Any], classes: dict[str, type]) -> Any:
    """Rebuild a graph made by `encode_nodes` with ``classes`` (kind -> class), each node made
    as ``cls(val)`` like rllm's helpers make them, then linked; ValueError when malformed."""
    if type(entries) is not list or not entries:
        raise ValueError("malformed node graph")
    objects: list[Any] = []
    for entry in entries:
        if (type(entry) is not list or not entry or entry[0] not in _KINDS
                or len(entry) != 2 + len(_KINDS[entry[0]][1])):
            raise ValueError("malformed node graph")
        objects.append(classes[entry[0]](decode(entry[1])))
    for entry, obj in zip(entries, objects, strict=True):
        for attr, link in zip(_KINDS[entry[0]][1], entry[2:], strict=True):
            if link is None:
                value = None
            elif type(link) is int and 0 <= link < len(objects):
                value = objects[link]
            elif type(link) is list and len(link) == 1:
                value = decode(link[0])
            else:
                raise ValueError("malformed node graph")
            setattr(obj, attr, value)
    return objects[0]
