#include <map>
#include <string>

namespace store {

constexpr int kLimit = 10;

class Store {
 public:
  virtual ~Store() = default;
  virtual int get(const std::string& key) const = 0;
};

struct Entry {
  std::string key;
  int value;
};

class Cache : public Store {
 public:
  explicit Cache(int size) : size_(size) {}
  int get(const std::string& key) const override;

  void put(const std::string& key, int value) {
    if (static_cast<int>(items_.size()) >= size_) {
      items_.clear();
    }
    items_[key] = helper(value);
  }

 private:
  static int helper(int v) { return v * 2; }
  int size_;
  std::map<std::string, int> items_;
};

int Cache::get(const std::string& key) const {
  auto it = items_.find(key);
  return it == items_.end() ? 0 : it->second;
}

template <typename T>
T twice(T v) {
  return v + v;
}

}  // namespace store

int main() {
  store::Cache cache(store::kLimit);
  cache.put("a", store::twice(1));
  return cache.get("a");
}
