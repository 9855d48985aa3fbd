import { Readable } from "stream";

export const LIMIT = 10;

export interface Store {
  get(key: string): number | undefined;
}

type Key = string;

enum Color {
  Red,
  Green,
}

function helper(values: number[]): number {
  let total = 0;
  for (const v of values) {
    total += v;
  }
  return total;
}

export class Cache implements Store {
  private items = new Map<Key, number>();

  constructor(private size: number) {}

  get(key: Key): number | undefined {
    return this.items.get(key);
  }

  put(key: Key, value: number): void {
    this.items.set(key, helper([value]));
  }
}

namespace Util {
  export function main(stream: Readable): Color {
    const cache = new Cache(LIMIT);
    cache.put("a", 1);
    return Color.Red;
  }
}
