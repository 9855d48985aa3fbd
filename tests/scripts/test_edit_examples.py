"""Next-edit examples in eight languages: the server's layout, region, history and gates."""

from __future__ import annotations

import difflib
import itertools
import json
import random
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer as HFTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import edit_examples as ee  # noqa: E402
import edit_mix  # noqa: E402
import training_data as td  # noqa: E402
from edit_core import EditExample  # noqa: E402
from edit_syntax import default_syntax  # noqa: E402
from instruction_checks import tokens  # noqa: E402

from engine.tokenizer import Tokenizer  # noqa: E402
from lsp_server.context.tokens import TokenCounter  # noqa: E402
from lsp_server.context.trees import DocumentTree  # noqa: E402
from lsp_server.edit_gates import check_next_edit  # noqa: E402
from lsp_server.edits import build_edit_prompt, choose_region  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[2] / "engine" / "models" / "sparkedit-coder-3m"
SEEDS = range(12)

# Small sources, one per language: functions, calls, literals, repeated similar lines.
SAMPLES = {
"python": ("shop/cart.py", '''\
import logging

logger = logging.getLogger(__name__)


def parse_price(text, currency="EUR"):
    value = float(text.strip())
    if value < 0:
        raise ValueError("negative price: %s" % text)
    return round(value, 2)


def cart_total(items, discount=0.0, rounding=2):
    total = 0.0
    for item in items:
        total = total + item.price * item.quantity
    total = total * (1 - discount)
    logger.info("total is %s for %d items" % (total, len(items)))
    return round(total, rounding)


class Cart:
    def __init__(self, owner):
        self.owner = owner
        self.items = []
        self.count = 0

    def add(self, item, quantity=1):
        self.items.append(item)
        self.count = self.count + quantity
        logger.debug("added {} to {}".format(item, self.owner))
        return self.count

    def remove(self, item):
        self.items.remove(item)
        self.count = self.count - 1
        logger.debug('removed %s' % item)
        return self.count

    def describe(self):
        """Describe the cart."""
        name = self.owner
        size = len(self.items)
        return "{} has {} items".format(name, size)


def checkout(cart, timeout=30):
    total = cart_total(cart.items, 0.1, 2)
    retries = 3
    while retries > 0:
        retries = retries - 1
        if total > 1000:
            return parse_price(str(total))
    return cart_total(cart.items, 0.0, 2)


def scale(value: float, factor: float = 2.0) -> float:
    """Scale a value."""
    return value * factor


def label(cart):
    name = cart.owner
    return f"{name}: {len(cart.items)} items"
'''),
"javascript": ("web/cart.js", '''\
const TAX = 0.2;

function parsePrice(text, currency) {
  var value = parseFloat(text.trim());
  if (value < 0) {
    throw new Error('negative price: ' + text);
  }
  return Math.round(value * 100) / 100;
}

function cartTotal(items, discount) {
  var total = 0;
  for (const item of items) {
    total = total + item.price * item.quantity;
  }
  total = total * (1 - discount);
  console.log('total', total);
  return total;
}

class Cart {
  constructor(owner) {
    this.owner = owner;
    this.items = [];
    this.count = 0;
  }

  add(item, quantity) {
    this.items.push(item);
    this.count = this.count + quantity;
    console.log('added', item);
    return this.count;
  }

  remove(item) {
    var index = this.items.indexOf(item);
    if (index == -1) {
      return this.count;
    }
    this.items.splice(index, 1);
    this.count = this.count - 1;
    return this.count;
  }
}

function checkout(cart, timeout) {
  var total = cartTotal(cart.items, 0.1);
  var retries = 3;
  while (retries > 0) {
    retries = retries - 1;
    if (total > 1000) {
      return parsePrice(String(total), 'EUR');
    }
  }
  return cartTotal(cart.items, 0);
}

module.exports = { Cart, checkout };

/** Formats a price. */
function formatPrice(value) {
  return value.toFixed(2) + ' EUR';
}
'''),
"typescript": ("web/cart.ts", '''\
export interface Item {
  name: string;
  price: number;
  quantity: number;
}

export function parsePrice(text: string, currency = "EUR"): number {
  const value = parseFloat(text.trim());
  if (value < 0) {
    throw new Error("negative price: " + text);
  }
  return Math.round(value * 100) / 100;
}

export function cartTotal(items: Item[], discount = 0, rounding = 2) {
  let total = 0;
  for (const item of items) {
    total = total + item.price * item.quantity;
  }
  total = total * (1 - discount);
  console.log("total", total);
  return total;
}

export class Cart {
  private items: Item[] = [];
  private count = 0;

  constructor(private owner: string) {}

  add(item: Item, quantity = 1): number {
    this.items.push(item);
    this.count = this.count + quantity;
    console.log("added", item.name);
    return this.count;
  }

  remove(item: Item) {
    const index = this.items.indexOf(item);
    if (index === -1) {
      return this.count;
    }
    this.items.splice(index, 1);
    this.count = this.count - 1;
    return this.count;
  }
}

export function checkout(cart: Cart, items: Item[], timeout = 30) {
  const total = cartTotal(items, 0.1, 2);
  let retries = 3;
  while (retries > 0) {
    retries = retries - 1;
    if (total > 1000) {
      return parsePrice(String(total));
    }
  }
  return cartTotal(items, 0, 2);
}

/** Formats a price. */
export function formatPrice(value: number, currency: string = "EUR"): string {
  return value.toFixed(2) + " " + currency;
}
'''),
"tsx": ("web/CartView.tsx", '''\
import React from "react";

interface Props {
  owner: string;
  items: string[];
}

function formatCount(count: number, label = "item") {
  const suffix = count == 1 ? "" : "s";
  return count + " " + label + suffix;
}

export function CartView(props: Props) {
  const count = props.items.length;
  const title = "Cart of " + props.owner;
  console.log("render", title);
  return (
    <div className="cart">
      <h1>{title}</h1>
      <p>{formatCount(count)}</p>
    </div>
  );
}

export function CartSummary(props: Props, limit = 10) {
  const shown = props.items.slice(0, limit);
  const hidden = props.items.length - shown.length;
  console.log("summary", shown.length);
  return <p>{formatCount(shown.length)} and {formatCount(hidden, "other")}</p>;
}

/** Renders an empty cart. */
export function EmptyCart(): JSX.Element {
  const text = "empty";
  return <p>{text}</p>;
}
'''),
"rust": ("src/cart.rs", '''\
use std::collections::HashMap;

pub struct Item {
    pub name: String,
    pub price: f64,
    pub quantity: u32,
}

pub fn parse_price(text: &str) -> Result<f64, String> {
    let value: f64 = text.trim().parse().map_err(|_| "bad price".to_string())?;
    if value < 0.0 {
        return Err("negative price".to_string());
    }
    Ok(value)
}

pub fn cart_total(items: &[Item], discount: f64) -> f64 {
    let mut total = 0.0;
    for item in items {
        total = total + item.price * item.quantity as f64;
    }
    total = total * (1.0 - discount);
    println!("total {}", total);
    total
}

pub fn load_prices(lines: &[&str]) -> Result<HashMap<String, f64>, String> {
    let mut prices = HashMap::new();
    for line in lines {
        let parts: Vec<&str> = line.split('=').collect();
        let price = parse_price(parts[1]).unwrap();
        let name = parts[0].trim().to_string();
        prices.insert(name, price);
    }
    let first = lines.first().unwrap();
    println!("loaded {}", first);
    Ok(prices)
}

pub fn checkout(items: &[Item], budget: f64) -> f64 {
    let total = cart_total(items, 0.1);
    let mut retries = 3;
    while retries > 0 {
        retries = retries - 1;
        if total > budget {
            return cart_total(items, 0.2);
        }
    }
    total
}

/// Doubles the value.
pub fn double(value: f64) -> f64 {
    let result = value * 2.0;
    result
}
'''),
"go": ("cart/cart.go", '''\
package cart

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type Item struct {
	Name     string
	Price    float64
	Quantity int
}

func ParsePrice(text string) (float64, error) {
	value, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
	if err != nil {
		return 0, err
	}
	if value < 0 {
		return 0, errors.New("negative price")
	}
	return value, nil
}

func CartTotal(items []Item, discount float64) float64 {
	total := 0.0
	for _, item := range items {
		total = total + item.Price*float64(item.Quantity)
	}
	total = total * (1 - discount)
	fmt.Println("total", total)
	return total
}

func Checkout(items []Item, budget float64) float64 {
	total := CartTotal(items, 0.1)
	retries := 3
	for retries > 0 {
		retries = retries - 1
		if total > budget {
			return CartTotal(items, 0.2)
		}
	}
	fmt.Println("checkout", total)
	return total
}

// Double doubles the value.
func Double(value float64) float64 {
	result := value * 2
	return result
}
'''),
"java": ("src/main/java/shop/Cart.java", '''\
package shop;

import java.util.ArrayList;
import java.util.List;

public class Cart {
    private final String owner;
    private final List<String> items = new ArrayList<String>();
    private int count = 0;

    public Cart(String owner) {
        this.owner = owner;
    }

    public int add(String item, int quantity) {
        items.add(item);
        count = count + quantity;
        System.out.println("added " + item);
        return count;
    }

    public int remove(String item) {
        int index = items.indexOf(item);
        if (index == -1) {
            return count;
        }
        items.remove(index);
        count = count - 1;
        System.out.println("removed " + item);
        return count;
    }

    public double total(double price, double discount) {
        double total = price * count;
        total = total * (1 - discount);
        System.out.println("total " + total);
        return total;
    }

    public double checkout(double price) {
        double total = total(price, 0.1);
        int retries = 3;
        while (retries > 0) {
            retries = retries - 1;
            if (total > 1000) {
                return total(price, 0.2);
            }
        }
        return total;
    }

    /** Returns the owner. */
    public String owner() {
        String name = owner;
        return name;
    }
}
'''),
"c": ("src/cart.c", '''\
#include <stdio.h>
#include <stdlib.h>

struct item {
    const char *name;
    double price;
    int quantity;
};

double parse_price(const char *text) {
    double value = atof(text);
    if (value < 0) {
        fprintf(stderr, "negative price: %s\\n", text);
        return 0;
    }
    return value;
}

double cart_total(const struct item *items, int n, double discount) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        total = total + items[i].price * items[i].quantity;
    }
    total = total * (1 - discount);
    printf("total %f\\n", total);
    return total;
}

double checkout(const struct item *items, int n, double budget) {
    double total = cart_total(items, n, 0.1);
    int retries = 3;
    while (retries > 0) {
        retries = retries - 1;
        if (total > budget) {
            return cart_total(items, n, 0.2);
        }
    }
    printf("checkout %f\\n", total);
    return total;
}

/** Doubles the value. */
double twice(double value) {
    double result = value * 2;
    return result;
}
'''),
"cpp": ("src/cart.cpp", '''\
#include <iostream>
#include <string>
#include <vector>

struct Item {
    std::string name;
    double price;
    int quantity;
};

double parse_price(const std::string &text) {
    double value = std::stod(text);
    if (value < 0) {
        std::cerr << "negative price: " << text << std::endl;
        return 0;
    }
    return value;
}

double cart_total(const std::vector<Item> &items, double discount) {
    double total = 0;
    for (const auto &item : items) {
        total = total + item.price * item.quantity;
    }
    total = total * (1 - discount);
    std::cout << "total " << total << std::endl;
    return total;
}

class Cart {
public:
    explicit Cart(std::string owner) : owner_(owner), next_(NULL) {}

    int add(const Item &item, int quantity) {
        items_.push_back(item);
        count_ = count_ + quantity;
        std::cout << "added " << item.name << std::endl;
        return count_;
    }

    double checkout(double budget) {
        double total = cart_total(items_, 0.1);
        int retries = 3;
        while (retries > 0) {
            retries = retries - 1;
            if (total > budget) {
                return cart_total(items_, 0.2);
            }
        }
        return total;
    }

private:
    std::string owner_;
    Cart *next_;
    std::vector<Item> items_;
    int count_ = 0;
};

/** Doubles the value. */
double twice(double value) {
    double result = value * 2;
    return result;
}
'''),
}
FILES = [td.SourceFile(path, text, "MIT", language=language)
         for language, (path, text) in SAMPLES.items()]
BY_LANGUAGE = {f.language: f for f in FILES}


@pytest.fixture(scope="module")
def examples() -> list[EditExample]:
    found = []
    for f in FILES:
        for kind in ee.KINDS.values():
            for seed in SEEDS:
                example = kind(random.Random(seed), f, 4000)
                if example is not None:
                    found.append(example)
    return found


@pytest.fixture(scope="module")
def encoders() -> tuple[td.Encoder, TokenCounter, dict[str, int]]:
    tokenizer = Tokenizer.from_dir(MODEL_DIR)
    encoder = td.Encoder(HFTokenizer.from_file(str(MODEL_DIR / "tokenizer.json")))
    return encoder, TokenCounter.from_tokenizer(tokenizer), dict(tokenizer.special_ids)


def _word_pair(diff: str) -> tuple[str, str]:
    """The first word the diff's "-" line has where its "+" line has another."""
    removed = [line[1:] for line in diff.splitlines() if line[:1] == "-" and line[:3] != "---"]
    added = [line[1:] for line in diff.splitlines() if line[:1] == "+" and line[:3] != "+++"]
    old_words = "".join(c if c.isalnum() or c == "_" else " " for c in removed[0]).split()
    new_words = "".join(c if c.isalnum() or c == "_" else " " for c in added[0]).split()
    return next((a, b) for a, b in zip(old_words, new_words, strict=False) if a != b)


def test_the_samples_cover_the_servers_languages() -> None:
    assert sorted(SAMPLES) == sorted(default_syntax().registry.names())
    for language, f in BY_LANGUAGE.items():
        assert default_syntax().parses(language, f.text), language


def test_every_language_gets_the_kinds(examples: list[EditExample]) -> None:
    found = {(ex.language, ex.kind) for ex in examples}
    for language in SAMPLES:
        for kind in ("rename", "replace_call", "add_argument", "typing", "no_edit"):
            assert (language, kind) in found, (language, kind)
    assert {lang for lang, kind in found if kind == "convert"} >= {"python", "rust", "go", "c"}


def test_every_rewrite_passes_the_servers_gates_and_parses(examples: list[EditExample]) -> None:
    syntax = default_syntax()
    for ex in examples:
        r = ex.region
        reason = check_next_edit(text=ex.text, start=r.start, end=r.end, new_region=ex.rewrite,
                                 cursor=r.cursor, history=list(ex.history),
                                 parser=syntax.parser(ex.language))
        assert reason is None, (ex.language, ex.kind, reason)
        # every sample parses before the change, so every result must
        assert syntax.parses(ex.language, ex.applied()), (ex.language, ex.kind)
        assert (ex.rewrite == ex.region_text) == (ex.kind == "no_edit")


def test_region_and_cursor_are_what_the_server_chooses(examples: list[EditExample]) -> None:
    syntax = default_syntax()
    for ex in examples:
        spec = syntax.spec(ex.language)
        tree = DocumentTree(spec, ex.text, syntax.parser(ex.language))
        assert choose_region(ex.text, ex.region.cursor, tree, spec) == ex.region


def test_history_is_the_servers_diff_format(examples: list[EditExample]) -> None:
    for ex in examples:
        assert ex.history
        for diff in ex.history:
            assert diff.startswith(f"--- a/{ex.path}\n+++ b/{ex.path}\n@@ -")


def test_pieces_encode_to_the_servers_prompt(examples: list[EditExample],
                                             encoders: tuple) -> None:
    encoder, counter, special_ids = encoders
    for ex in examples[::4]:
        assert ex.shown is None
        prompt = build_edit_prompt(counter=counter, special_ids=special_ids, path=ex.path,
                                   text=ex.text, region=ex.region, history=list(ex.history),
                                   instruction=None, budget=1_000_000)
        assert encoder.encode(ex.pieces()) == prompt.tokens
        pieces = ex.training_pieces()
        assert pieces[-2:] == [ex.rewrite, "<|endoftext|>"] and pieces[:-2] == ex.pieces()


def test_a_small_budget_cuts_whole_lines() -> None:
    cut = [ex for seed in range(20)
           if (ex := ee.typing(random.Random(seed), BY_LANGUAGE["java"], 700)) is not None
           and ex.shown is not None]
    assert cut
    for ex in cut:
        start, end = ex.shown
        text = ex.text
        assert start == 0 or text[start - 1] == "\n"
        assert end == len(text) or text[end - 1] == "\n"
        assert start == 0 or text.count("\n", start, ex.region.start) % 8 == 0
        shown = [p for p in ex.pieces() if p not in td.SPECIAL]
        assert sum(map(len, shown)) <= 700 + 1


def test_renames_and_replaced_calls_change_only_that_name(examples: list[EditExample]) -> None:
    syntax = default_syntax()
    checked = 0
    for ex in examples:
        if ex.kind not in ("rename", "replace_call"):
            continue
        old, new = _word_pair(ex.history[-1])
        r = ex.region
        before = tokens(syntax.parse(ex.language, ex.text), r.start, r.end)
        after = tokens(syntax.parse(ex.language, ex.applied()), r.start,
                       r.start + len(ex.rewrite))
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert changed and set(changed) == {(old, new)}, (ex.language, ex.kind)
        checked += 1
    assert checked > 20


def test_added_arguments_are_insertions_at_call_sites(examples: list[EditExample]) -> None:
    checked = 0
    for ex in (e for e in examples if e.kind == "add_argument"):
        added = [line for line in ex.history[-1].splitlines() if line.startswith("+") and
                 not line.startswith("+++")]
        assert len(added) == 1, "the definition gained a parameter"
        matcher = difflib.SequenceMatcher(None, ex.region_text, ex.rewrite, autojunk=False)
        inserted = [ex.rewrite[j1:j2] for tag, _, _, j1, j2 in matcher.get_opcodes()
                    if tag != "equal"]
        assert all(tag in ("equal", "insert") for tag, *_ in matcher.get_opcodes())
        assert inserted and all(any(v in text for v in ("10", "true", "True", "1"))
                                for text in inserted)
        checked += 1
    assert checked >= 9


def test_typing_finishes_the_line(examples: list[EditExample]) -> None:
    for ex in (e for e in examples if e.kind == "typing"):
        assert ex.applied() == BY_LANGUAGE[ex.language].text
        assert ex.region.cursor > ex.region.start or ex.region.cursor == 0


def test_no_edit_follows_a_change_in_the_region(examples: list[EditExample]) -> None:
    for ex in (e for e in examples if e.kind == "no_edit"):
        assert ex.rewrite == ex.region_text and ex.history
        assert ex.region.start <= ex.region.cursor <= ex.region.end


def test_a_file_with_a_few_errors_gives_examples_that_avoid_them() -> None:
    path, text = SAMPLES["c"]
    macro = "struct object {\n    PyObject_HEAD\n    int size;\n};\n\n"  # an ERROR node
    f = td.SourceFile(path, macro + text, "MIT", language="c")
    syntax = default_syntax()
    assert not syntax.parses("c", f.text)
    made = [ex for kind in ("rename", "no_edit", "typing") for seed in SEEDS
            if (ex := ee.KINDS[kind](random.Random(seed), f, 4000)) is not None]
    assert made
    for ex in made:
        assert ee.gate(ex) is None
        # a region never holds the ERROR node (typing aside: its line is unfinished anyway)
        assert ex.kind == "typing" or ex.region.start > len(macro)


def _pair(language: str) -> ee.ReleasePair:
    path, old = SAMPLES[language]
    new = old.replace("retries", "attempts").replace("count", "size").replace("0.1", "0.15")
    return ee.ReleasePair(package="shop", registry="test", language=language, path=path,
                          old_version="1.0", new_version="1.1", licence="MIT", old_text=old,
                          new_text=new, split="train")


def test_mined_examples_make_later_hunks_of_the_real_diff() -> None:
    syntax = default_syntax()
    languages = set()
    for language in SAMPLES:
        pair = _pair(language)
        new_lines = set(pair.new_text.split("\n")) | set(pair.old_text.split("\n"))
        for seed in range(8):
            ex = ee.mined(random.Random(seed), pair, 4000)
            if ex is None:
                continue
            languages.add(language)
            assert ex.kind == "mined" and ex.rewrite != ex.region_text
            assert set(ex.applied().split("\n")) <= new_lines
            assert ee.gate(ex) is None and syntax.parses(language, ex.applied())
    assert len(languages) >= 6, languages


def test_release_pairs_load_and_give_examples(tmp_path: Path) -> None:
    records = [vars(_pair(language)) for language in ("python", "go", "rust")]
    path = tmp_path / "release_pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    pairs = list(ee.load_release_pairs(path))
    assert [vars(p) for p in pairs] == records
    assert list(ee.mined_examples(pairs, seed=1, max_chars=4000, tries=8))


def test_the_mix_is_seeded_and_has_every_part() -> None:
    def take(seed: int) -> list[list[str]]:
        return list(itertools.islice(edit_mix.edit_examples(FILES, seed, 2400), 24))

    first = take(3)
    assert first == take(3) and first != take(4)
    assert all(ex[-1] == "<|endoftext|>" for ex in first)
    assert any(ex[0] == "<|instruction|>" for ex in first)
    assert any(ex[0] == "<|edit_history|>" for ex in first)
    mined_only = edit_mix.edit_examples([], 1, 4000, release_pairs=[_pair("python")])
    assert next(mined_only)[0] == "<|edit_history|>"


def test_edit_task_is_a_drop_in_for_the_old_one() -> None:
    made = [t for seed in range(30)
            if (t := edit_mix.edit_task(random.Random(seed), FILES[seed % 9], 2400)) is not None]
    assert len(made) > 10
    for task in made:
        pieces = task.pieces() + [task.rewrite, "<|endoftext|>"]
        assert pieces == task.training_pieces()


def test_held_out_tasks_are_fixed_lists() -> None:
    tasks = edit_mix.held_out_edit_tasks(FILES, 12, seed=5)
    assert tasks == edit_mix.held_out_edit_tasks(FILES, 12, seed=5)
    assert len(tasks) == 12
    assert {t.kind for t in tasks} == set(edit_mix.EDIT_TASK_KINDS)
    instructions = edit_mix.held_out_instruction_tasks(FILES, 12, seed=5)
    assert len(instructions) == 12 and len({t.kind for t in instructions}) == 6
    for task in instructions:
        assert task.check(task.example.rewrite)
