#include <stdio.h>
#include "cache.h"

#define LIMIT 10
#define SQUARE(x) ((x) * (x))

typedef struct cache {
    int size;
    int *items;
} cache_t;

union value {
    int i;
    float f;
};

enum color { RED, GREEN };

static int helper(const int *values, int n) {
    int total = 0;
    for (int i = 0; i < n; i++) {
        total += values[i];
    }
    return total;
}

int *cache_items(cache_t *c);

void cache_put(cache_t *c, int key, int value) {
    if (key >= c->size) {
        return;
    }
    c->items[key] = helper(&value, 1) + SQUARE(LIMIT);
    printf("%d\n", c->items[key]);
}
