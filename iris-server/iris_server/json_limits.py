"""How deep a JSON text nests, found without parsing it. A pure function.

Python's json parser recurses once per level: a few kilobytes of `[` exhaust the interpreter's recursion limit
and raise RecursionError (a 500), and a few hundred levels already cost more than any request of this API
needs. So depth is measured first, over the brackets outside string literals, and texts nested deeper than the
limit are refused (400) before the parser sees them.
"""

from __future__ import annotations

import re

# The only bytes that matter: quotes (into and out of strings), escapes (an escaped quote stays in its string)
# and brackets. One linear pass over them; no pattern that could backtrack.
_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = ord('"')


def depth(text: bytes | str) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar). Unbalanced text is measured as
    far as it goes; the parser reports what is wrong with it."""
    data = text.encode() if isinstance(text, str) else text
    level = deepest = 0
    in_string = False
    for match in _TOKENS.finditer(data):
        token = match.group()
        if len(token) == 2:
            continue  # an escape: inside a string it is text; outside, the parser refuses it
        byte = token[0]
        if byte == _QUOTE:
            in_string = not in_string
        elif in_string:
            continue
        elif byte in _OPEN:
            level += 1
            deepest = max(deepest, level)
        elif byte in _CLOSE:
            level -= 1
    return deepest


def too_deep(text: bytes | str, limit: int) -> str | None:
    """A message for the caller when `text` nests deeper than `limit`, else None."""
    found = depth(text)
    if found > limit:
        return f"JSON nested {found} levels deep; at most {limit} are accepted"
    return None
