use std::collections::HashMap;
use std::fmt::{self, Display};

pub const LIMIT: usize = 10;

macro_rules! square {
    ($x:expr) => {
        $x * $x
    };
}

pub trait Store {
    fn get(&self, key: &str) -> Option<i64>;
}

pub struct Cache {
    size: usize,
    items: HashMap<String, i64>,
}

impl Cache {
    pub fn new(size: usize) -> Self {
        Cache { size, items: HashMap::new() }
    }

    pub fn put(&mut self, key: &str, value: i64) {
        if self.items.len() >= self.size {
            self.items.clear();
        }
        self.items.insert(key.to_string(), helper(&[value]));
    }
}

impl Store for Cache {
    fn get(&self, key: &str) -> Option<i64> {
        self.items.get(key).copied()
    }
}

fn helper(values: &[i64]) -> i64 {
    values.iter().sum()
}

mod util {
    pub fn main() {
        let mut cache = super::Cache::new(super::LIMIT);
        cache.put("a", square!(2));
    }
}
