//! Sets and maps whose elements cannot be hashed (a struct with a `double` inside, say): kept in a
//! `Vec` in wire order. Generated code uses them where `HashSet`/`HashMap` cannot be.

use std::ops::{Deref, DerefMut};

/// A Thrift `set` of values that cannot be hashed, in wire order.
#[derive(Debug, Clone, PartialEq)]
pub struct ListSet<T>(pub Vec<T>);

/// A Thrift `map` whose keys cannot be hashed, as `(key, value)` pairs in wire order.
#[derive(Debug, Clone, PartialEq)]
pub struct ListMap<K, V>(pub Vec<(K, V)>);

// Empty containers need no `Default` of their elements (a derive would ask for one).
impl<T> Default for ListSet<T> {
    fn default() -> Self {
        ListSet(Vec::new())
    }
}

impl<K, V> Default for ListMap<K, V> {
    fn default() -> Self {
        ListMap(Vec::new())
    }
}

impl<T> Deref for ListSet<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> DerefMut for ListSet<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T> FromIterator<T> for ListSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        ListSet(iter.into_iter().collect())
    }
}

impl<T> From<Vec<T>> for ListSet<T> {
    fn from(v: Vec<T>) -> Self {
        ListSet(v)
    }
}

impl<K, V> Deref for ListMap<K, V> {
    type Target = Vec<(K, V)>;
    fn deref(&self) -> &Vec<(K, V)> {
        &self.0
    }
}

impl<K, V> DerefMut for ListMap<K, V> {
    fn deref_mut(&mut self) -> &mut Vec<(K, V)> {
        &mut self.0
    }
}

impl<K, V> FromIterator<(K, V)> for ListMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        ListMap(iter.into_iter().collect())
    }
}

impl<K, V> From<Vec<(K, V)>> for ListMap<K, V> {
    fn from(v: Vec<(K, V)>) -> Self {
        ListMap(v)
    }
}

impl<K: PartialEq, V> ListMap<K, V> {
    /// The value of the first pair whose key equals `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}
