package org.example.cache;

import java.util.HashMap;
import java.util.Map;

interface Store {
    Integer get(String key);
}

public class Cache implements Store {
    private final int size;
    private final Map<String, Integer> items = new HashMap<>();

    public Cache(int size) {
        this.size = size;
    }

    @Override
    public Integer get(String key) {
        return items.get(key);
    }

    public void put(String key, int value) {
        if (items.size() >= size) {
            items.clear();
        }
        items.put(key, helper(value));
    }

    private static int helper(int value) {
        return value * 2;
    }

    enum Color { RED, GREEN }
}
