package cache

import (
	"fmt"
	"strings"
)

const Limit = 10

type Store interface {
	Get(key string) (int, bool)
}

type Cache struct {
	size  int
	items map[string]int
}

type Key = string

func NewCache(size int) *Cache {
	return &Cache{size: size, items: map[string]int{}}
}

func (c *Cache) Get(key string) (int, bool) {
	v, ok := c.items[key]
	return v, ok
}

func (c *Cache) Put(key string, value int) {
	if len(c.items) >= c.size {
		c.items = map[string]int{}
	}
	c.items[strings.ToLower(key)] = helper([]int{value})
}

func helper(values []int) int {
	total := 0
	for _, v := range values {
		total += v
	}
	fmt.Println(total)
	return total
}
