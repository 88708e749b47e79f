"""Taichi's Python frontend, made to do its repeated work once (``install``, called by
``polyalloy.init``).

Before Taichi compiles a kernel, or loads it from the offline cache, its Python frontend walks the
kernel's AST (the cache's key is the IR that walk builds). Two parts of that walk redo work whose
answer never changes: on our kernels, a fifth of a cold fast-compile build and almost half of a
warm start (``polyalloy_block``'s first substep from the cache, 3.75 -> 2.05 s; under cProfile a
cold build spent 4.8 of 17.8 s in ``get_pos_info``, whose texts were built with ``textwrap``
177,589 times; docs/benchmark.md, "Taichi's frontend, done once"):

- ``ASTTransformerContext.get_pos_info(node)``: the ``File ..., line N`` text with the source line
  and a ``^^^`` hint under the node, built for every node visited (the stencil's ``ti.static``
  loops visit the same nodes 9 to 27 times) though it is read only when an error is raised. It is
  kept on the node and in a table keyed by everything the text is made of (file, function, line
  offsets, columns, the node's kind and the source lines it spans), so an unrolled node, and the
  same function compiled again for another set of fields (``polyalloy.pool``), take it from there.
  The text is Taichi's own, byte for byte (``tests/test_frontend.py``).
- the function's source: ``inspect.getsourcelines`` (which tokenises the whole file to find the
  block) and ``textwrap`` on every line, for every ``ti.func`` call the kernel makes. They are kept
  per function object: a module reloaded by ``polyalloy.reload`` makes new function objects, whose
  source is read afresh; an old function keeps the source it was compiled from.

Nothing changes in what is compiled: the IR, the cache keys and the error messages are Taichi's.
``POLYALLOY_FRONTEND_MEMO=0`` leaves Taichi as it is (for comparisons). Where the installed
Taichi lacks what is wrapped (another version), nothing is changed.
"""
from __future__ import annotations

import os
import weakref

# entries of a table before it starts afresh: a position text and its key take ~350 bytes (~45 MB
# at most); the kernels of two 3D scenes (polyalloy_block, bars_walk) fill 8,333
POS_TABLE_LIMIT = 100_000
_installed = False


def install() -> bool:
    """Wrap Taichi's frontend as described above, once per process; True when it is wrapped."""
    global _installed
    if _installed:
        return True
    if os.environ.get("POLYALLOY_FRONTEND_MEMO", "1").strip() == "0":
        return False
    try:
        from taichi.lang import kernel_impl
        from taichi.lang.ast import ast_transformer_utils
    except ImportError:
        return False
    context = getattr(ast_transformer_utils, "ASTTransformerContext", None)
    needed = (getattr(context, "get_pos_info", None), getattr(kernel_impl, "getsourcelines", None),
              getattr(kernel_impl, "getsourcefile", None), getattr(kernel_impl, "textwrap", None))
    if any(n is None for n in needed):
        return False
    context.get_pos_info = _memo_pos_info(context.get_pos_info)
    kernel_impl.getsourcelines = _memo_per_function(kernel_impl.getsourcelines)
    kernel_impl.getsourcefile = _memo_per_function(kernel_impl.getsourcefile)
    kernel_impl.textwrap = _MemoTextwrap(kernel_impl.textwrap)
    _installed = True
    return True


def installed() -> bool:
    return _installed


def _memo_pos_info(taichi_get_pos_info):
    table = {}

    def get_pos_info(self, node):
        try:
            return node._polyalloy_pos_info
        except AttributeError:
            pass
        first, last = node.lineno, node.end_lineno
        body = getattr(node, "body", None)
        key = (self.file, self.lineno_offset, self.func.func.__name__, self.indent, type(node).__name__, first, last,
               node.col_offset, node.end_col_offset, body[0].lineno if isinstance(body, list) and body else None,
               tuple(self.src[first - 1:last]))
        text = table.get(key)
        if text is None:
            if len(table) >= POS_TABLE_LIMIT:
                table.clear()
            text = table[key] = taichi_get_pos_info(self, node)
        node._polyalloy_pos_info = text
        return text

    get_pos_info.__wrapped__ = taichi_get_pos_info
    return get_pos_info


def _memo_per_function(read):
    kept = weakref.WeakKeyDictionary()

    def per_function(func):
        try:
            out = kept[func]
        except (KeyError, TypeError):  # TypeError: an object that takes no weak reference
            out = read(func)
            try:
                kept[func] = out
            except TypeError:
                return out
        return (list(out[0]), out[1]) if isinstance(out, tuple) else out

    per_function.__wrapped__ = read
    return per_function


class _MemoTextwrap:
    """The ``textwrap`` module as kernel_impl sees it: ``fill`` and ``dedent`` remembered by their
    arguments (pure functions of them), everything else the module's own."""

    def __init__(self, module):
        self._module = module
        self._fill, self._dedent = {}, {}

    def fill(self, text, **kwargs):
        key = (text, tuple(sorted(kwargs.items())))
        out = self._fill.get(key)
        if out is None:
            if len(self._fill) >= POS_TABLE_LIMIT:
                self._fill.clear()
            out = self._fill[key] = self._module.fill(text, **kwargs)
        return out

    def dedent(self, text):
        out = self._dedent.get(text)
        if out is None:
            if len(self._dedent) >= 4096:
                self._dedent.clear()
            out = self._dedent[text] = self._module.dedent(text)
        return out

    def __getattr__(self, name):
        return getattr(self._module, name)
