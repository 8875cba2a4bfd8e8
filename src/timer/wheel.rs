//! STUB (replaced by helper)
use std::collections::BTreeMap;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerKey(u64);
pub struct Wheel<T> {
    m: BTreeMap<(u64, u64), T>,
    n: u64,
    idx: std::collections::HashMap<u64, u64>,
}
impl<T> Wheel<T> {
    pub fn new(_now: u64) -> Self {
        Wheel {
            m: BTreeMap::new(),
            n: 0,
            idx: Default::default(),
        }
    }
    pub fn insert(&mut self, d: u64, v: T) -> TimerKey {
        self.n += 1;
        self.m.insert((d, self.n), v);
        self.idx.insert(self.n, d);
        TimerKey(self.n)
    }
    pub fn cancel(&mut self, k: TimerKey) -> Option<T> {
        let d = self.idx.remove(&k.0)?;
        self.m.remove(&(d, k.0))
    }
    pub fn poll(&mut self, now: u64) -> Option<(u64, T)> {
        let (&(d, n), _) = self.m.iter().next()?;
        if d > now {
            return None;
        }
        self.idx.remove(&n);
        self.m.remove(&(d, n)).map(|v| (d, v))
    }
    pub fn poll_at(&self) -> Option<u64> {
        self.m.keys().next().map(|k| k.0)
    }
    pub fn len(&self) -> usize {
        self.m.len()
    }
    pub fn is_empty(&self) -> bool {
        self.m.is_empty()
    }
}
