"""A bounded cache of texts derived from a key (file texts, redacted texts)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class TextCache:
    """Texts derived from a key, least recently used dropped first.

    Used twice: workspace file texts (key: path, size and mtime from the index entry, so a
    changed file is a new key) and redacted texts (key: the text). Bound: `max_chars`
    characters of values in all. Nothing else invalidates an entry."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._items: OrderedDict[Any, tuple[str, int]] = OrderedDict()
        self._chars = 0

    def get(self, key: Any) -> tuple[str, int] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: Any, value: tuple[str, int]) -> None:
        if len(value[0]) > self.max_chars or key in self._items:
            return
        self._items[key] = value
        self._chars += len(value[0])
        while self._chars > self.max_chars:
            _, (old, _) = self._items.popitem(last=False)
            self._chars -= len(old)
