"""A small shopping-cart module: the file the README's `sparkedit suggest` demo runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    price: Decimal
    quantity: int = 1

    def subtotal(self) -> Decimal:
        return self.price * self.quantity


@dataclass
class Cart:
    items: list[Item] = field(default_factory=list)
    discount_percent: int = 0

    def add(self, item: Item) -> None:
        for i, existing in enumerate(self.items):
            if existing.sku == item.sku:
                merged = existing.quantity + item.quantity
                self.items[i] = Item(item.sku, item.name, item.price, merged)
                return
        self.items.append(item)

    def remove(self, sku: str) -> bool:
        before = len(self.items)
        self.items = [item for item in self.items if item.sku != sku]
        return len(self.items) != before

    def total(self) -> Decimal:
        gross = sum((item.subtotal() for item in self.items), Decimal("0"))
        discount = gross * Decimal(self.discount_percent) / Decimal(100)
        return (gross - discount).quantize(Decimal("0.01"))

    def receipt(self) -> str:
        lines = [f"{item.quantity} x {item.name:<20} {item.subtotal():>8}" for item in self.items]
        if self.discount_percent:
            lines.append(f"discount {self.discount_percent}%")
        lines.append(f"{'total':<24} {self.total():>8}")
        return "\n".join(lines)


def parse_line(line: str) -> Item:
    """Read `sku,name,price[,quantity]` as written by the shop's CSV export."""
    sku, name, price, *rest = (part.strip() for part in line.split(","))
    quantity = int(rest[0]) if rest else 1
    return Item(sku, name, Decimal(price), quantity)


if __name__ == "__main__":
    cart = Cart(discount_percent=10)
    for row in ["A1, Coffee beans, 12.50, 2", "B7, Filter papers, 3.20", "A1, Coffee beans, 12.50"]:
        cart.add(parse_line(row))
    print(cart.receipt())
