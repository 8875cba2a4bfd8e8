//! STUB (replaced by helper)
use crate::server::tokens::ConnId;
pub trait Recipients {
    fn can_take(&self, conn: ConnId, len: usize) -> bool;
    fn deliver(&mut self, conn: ConnId);
    fn close_slow(&mut self, conn: ConnId);
}
#[derive(Default)]
pub struct PubSub;
impl PubSub {
    pub fn new() -> Self {
        PubSub
    }
    pub fn listen(&mut self, _c: ConnId, _p: &str, _g: Option<&str>) -> bool {
        true
    }
    pub fn unlisten(&mut self, _c: ConnId, _p: &str, _g: Option<&str>) {}
    pub fn has(&self, _c: ConnId, _p: &str, _g: Option<&str>) -> bool {
        false
    }
    pub fn remove_conn(&mut self, _c: ConnId) {}
    pub fn count_of(&self, _c: ConnId) -> usize {
        0
    }
    pub fn publish(&mut self, _ch: &str, _l: usize, _rx: &mut impl Recipients) -> usize {
        0
    }
    pub fn stats(&self) -> Vec<(String, Option<String>, usize)> {
        vec![]
    }
}
#[derive(Default)]
pub struct Watches;
impl Watches {
    pub fn new() -> Self {
        Watches
    }
    pub fn watch(&mut self, _c: ConnId, _p: &str) -> bool {
        true
    }
    pub fn unwatch(&mut self, _c: ConnId, _p: &str) {}
    pub fn has(&self, _c: ConnId, _p: &str) -> bool {
        false
    }
    pub fn remove_conn(&mut self, _c: ConnId) {}
    pub fn count_of(&self, _c: ConnId) -> usize {
        0
    }
    pub fn matching(&mut self, _k: &str, _f: impl FnMut(ConnId)) {}
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn stats(&self) -> Vec<(String, usize)> {
        vec![]
    }
}
