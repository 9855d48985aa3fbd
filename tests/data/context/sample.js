import { readFile, writeFile as write } from "fs";
import path from "path";

const LIMIT = 10;

function helper(values) {
  let total = 0;
  for (const v of values) {
    total += v;
  }
  return total;
}

const square = (x) => x * x;

class Base {}

class Cache extends Base {
  constructor(size) {
    super();
    this.size = size;
    this.items = new Map();
  }

  put(key, value) {
    if (this.items.size >= this.size) {
      this.items.clear();
    }
    this.items.set(key, helper([value]));
  }
}

export function main() {
  const cache = new Cache(LIMIT);
  cache.put("a", square(2));
  readFile(path.join("a", "b"), write);
}
