"""A small sample module for the context tests."""
import os.path
from collections import OrderedDict as OD, defaultdict

MAX_ITEMS = 10


def helper(values: list[int]) -> int:
    total = 0
    for value in values:
        total += value
    return total


class Base:
    pass


class Cache(Base):
    """An LRU cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items = OD()

    @property
    def full(self) -> bool:
        return len(self.items) >= self.size

    def put(self, key: str, value: int) -> None:
        if self.full:
            self.items.popitem(last=False)
        self.items[key] = helper([value])


def main() -> None:
    cache = Cache(MAX_ITEMS)
    cache.put("a", 1)
    print(os.path.join("a", "b"), defaultdict(int))
