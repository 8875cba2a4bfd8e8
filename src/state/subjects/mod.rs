//! Subscriptions by subject pattern: pub/sub `listen` (§8.12) and key `watch` (§8.13).
//!
//! Both keep their patterns in one generic token [`trie`] so delivering a
//! signal or a watch event walks the subject's tokens instead of scanning every
//! subscription. Each also keeps a per-connection index of what it holds, so
//! disconnect cleanup is O(that connection's subscriptions), not O(all).
//!
//! Memory: a pattern's tokens are stored once, as trie nodes shared by every
//! subscriber; subscribers are `OwnerId` sets at the node; the per-connection
//! index holds node ids, not pattern strings. Group names are one `Rc<str>`
//! per group, shared by its members' index entries. Empty nodes are pruned.
//!
//! Queue groups (§8.12, §2.10 item 4) keep members in join order with a
//! rotation cursor `next` (index of the member to try first, `0..=len`, taken
//! modulo `len` when used). Delivering to member `i` sets `next = i + 1`; a
//! member leaving below `next` shifts it down by one, so the rotation continues
//! with the member after the one that left; a member joining at the end is
//! reached in join order (right after the last member served, if that was the
//! last one).
//!
//! Memory budget (protocol.md §7.4a): each index keeps what it holds in
//! bytes as it changes — the trie's nodes (shared between patterns, so only
//! the trie knows when one comes or goes), one subscriber entry per
//! registration, a group record per queue group, an index entry per
//! connection — and the state settles the difference with the budget around
//! every call that changes it ([`PubSub::bytes`], [`Watches::bytes`]).
//!
//! Costs worth knowing: queue-group membership is a `Vec`, so a member
//! leaving is O(group size) (groups are small in practice; ungrouped
//! subscribers, the large fan-outs, are hash sets). Publishing keeps its
//! scratch vectors in the struct, so a warm publish allocates nothing; they
//! keep the capacity of the largest fan-out seen (8 bytes per recipient).

mod trie;

use crate::owner::OwnerId;
use crate::state::memory;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use trie::{NodeId, Payload, Trie};

/// Who receives what; implemented by the server.
pub trait Recipients {
    /// True if `conn` can take one more frame of `len` bytes without passing its output limit.
    fn can_take(&self, conn: OwnerId, len: usize) -> bool;
    /// Queue the frame for `conn`.
    fn deliver(&mut self, conn: OwnerId);
    /// `conn` is a slow consumer: the server closes it (cleanup removes its subscriptions later).
    fn close_slow(&mut self, conn: OwnerId);
}

/// Hasher for `OwnerId` keys. Connection ids are assigned by the server, not
/// chosen by clients, so flooding a table with colliding keys is not possible
/// and SipHash's cost buys nothing; a fixed hasher also makes set iteration
/// order (hence delivery order) reproducible run to run, and takes no space
/// per table. The derived `Hash` feeds `slot` then `generation` as `u32`s,
/// which pack into one `u64` finished with murmur3's fmix64 (a bijection).
#[derive(Default, Clone, Copy)]
struct ConnHasher(u64);

impl Hasher for ConnHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type ConnBuild = BuildHasherDefault<ConnHasher>;
type ConnSet = HashSet<OwnerId, ConnBuild>;
type ConnMap<V> = HashMap<OwnerId, V, ConnBuild>;

impl Payload for ConnSet {
    fn is_empty(&self) -> bool {
        HashSet::is_empty(self)
    }
}

/// Total order on `OwnerId` for dedup and lookups (`OwnerId` itself is not `Ord`).
fn conn_key(c: &OwnerId) -> u64 {
    (u64::from(c.slot) << 32) | u64::from(c.generation)
}

/// Remove `c` from `set`, giving memory back once the set has shrunk to a
/// quarter of its capacity (amortised O(1); a 10k fan-out that empties must
/// not pin its table).
fn remove_from(set: &mut ConnSet, c: OwnerId) -> bool {
    let removed = set.remove(&c);
    if removed && set.len() * 4 < set.capacity() {
        set.shrink_to_fit();
    }
    removed
}

/// Remove `conn`'s entry from a per-connection index, giving the table's
/// memory back once it is down to a quarter of its capacity (amortised O(1),
/// as in [`remove_from`]). Without this, the index of a storm of
/// subscribers keeps its peak size forever, and hashbrown's tombstones
/// make it double in place once churn fills them (issue 13's disconnect
/// storm: +540 KB for good after rounds of 5,000 watchers).
fn remove_index<V>(map: &mut ConnMap<V>, conn: &OwnerId) -> Option<V> {
    let v = map.remove(conn);
    if v.is_some() && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
    v
}

/// Scratch reused by every publish / match so a warm call does not allocate.
#[derive(Default)]
struct Scratch {
    stack: Vec<(NodeId, usize)>,
    nodes: Vec<NodeId>,
    conns: Vec<OwnerId>,
    /// Conns closed during the current publish, sorted by `conn_key`.
    closed: Vec<OwnerId>,
}

/// Collect the distinct members of `sets` into `out`. With one contributing
/// set nothing can repeat, so the O(n log n) sort is skipped on the common
/// single-pattern fan-out (whose order is then the set's, reproducible given
/// the same history since [`ConnHasher`] is fixed).
fn gather<'a>(sets: impl Iterator<Item = &'a ConnSet>, out: &mut Vec<OwnerId>) {
    out.clear();
    let mut sources = 0;
    for set in sets.filter(|s| !s.is_empty()) {
        sources += 1;
        out.extend(set.iter().copied());
    }
    if sources > 1 {
        out.sort_unstable_by_key(conn_key);
        out.dedup();
    }
}

/// Conns closed in the current publish, kept sorted by `conn_key`.
fn is_closed(closed: &[OwnerId], c: OwnerId) -> bool {
    closed.binary_search_by_key(&conn_key(&c), conn_key).is_ok()
}

fn mark_closed(closed: &mut Vec<OwnerId>, c: OwnerId) {
    if let Err(at) = closed.binary_search_by_key(&conn_key(&c), conn_key) {
        closed.insert(at, c);
    }
}

/// One queue group: the members of one (pattern, group) pair.
struct Group {
    name: Rc<str>,
    /// Join order.
    members: Vec<OwnerId>,
    /// Rotation cursor, `0..=members.len()`; see the module docs.
    next: usize,
}

impl Group {
    fn leave(&mut self, conn: OwnerId) {
        let Some(i) = self.members.iter().position(|&m| m == conn) else {
            return;
        };
        self.members.remove(i);
        if i < self.next {
            self.next -= 1;
        }
        if self.members.len() * 4 < self.members.capacity() {
            self.members.shrink_to_fit();
        }
    }

    /// Deliver to one member per §8.12: the member at the cursor, else the next
    /// ones that can take the frame, in rotation order. If none can, the first
    /// member tried is closed. Members already closed in this publish are
    /// skipped unasked (so the "first chosen" is the first one still open).
    /// Returns whether a frame was delivered.
    fn deliver_one(
        &mut self,
        len: usize,
        rx: &mut impl Recipients,
        closed: &mut Vec<OwnerId>,
    ) -> bool {
        let n = self.members.len();
        if n == 0 {
            return false;
        }
        let start = self.next % n;
        let mut first_tried = None;
        for k in 0..n {
            let i = (start + k) % n;
            let Some(&m) = self.members.get(i) else {
                continue;
            };
            if is_closed(closed, m) {
                continue;
            }
            first_tried.get_or_insert(m);
            if rx.can_take(m, len) {
                rx.deliver(m);
                self.next = i + 1;
                return true;
            }
        }
        if let Some(m) = first_tried {
            // The cursor stays on it: once cleanup removes it, the rotation
            // continues with the member after it.
            rx.close_slow(m);
            mark_closed(closed, m);
        }
        false
    }
}

/// What one trie node holds for pub/sub: the subscriptions of one pattern.
#[derive(Default)]
struct Subs {
    ungrouped: ConnSet,
    /// In creation order (stats sort on their own).
    groups: Vec<Group>,
}

impl Payload for Subs {
    fn is_empty(&self) -> bool {
        self.ungrouped.is_empty() && self.groups.is_empty()
    }
}

/// One (pattern, group) subscription in a connection's index.
struct SubRef {
    node: NodeId,
    group: Option<Rc<str>>,
}

impl SubRef {
    fn is(&self, node: NodeId, group: Option<&str>) -> bool {
        self.node == node && self.group.as_deref() == group
    }
}

/// One (pattern, group) registration: its set or member-list entry and its
/// entry in the connection's index.
const LISTEN_BYTES: usize = memory::subscriber(std::mem::size_of::<SubRef>());
/// One watched pattern of a connection.
const WATCH_BYTES: usize = memory::subscriber(std::mem::size_of::<NodeId>());

/// Pub/sub subscriptions (§8.12).
#[derive(Default)]
pub struct PubSub {
    trie: Trie<Subs>,
    by_conn: ConnMap<Vec<SubRef>>,
    scratch: Scratch,
    /// Registrations, groups and index entries, in budget bytes (the trie
    /// counts its own nodes).
    bytes: usize,
}

impl PubSub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribe `conn` to (pattern, group). Returns true if new, false if it
    /// already existed (a repeat changes nothing, §7.4, §8.12).
    pub fn listen(&mut self, conn: OwnerId, pattern: &str, group: Option<&str>) -> bool {
        let node = self.trie.insert(pattern);
        let Some(subs) = self.trie.get_mut(node) else {
            return false;
        };
        let group = match group {
            None => {
                let first = subs.ungrouped.is_empty();
                if !subs.ungrouped.insert(conn) {
                    return false;
                }
                if first {
                    self.bytes += memory::SUBSCRIBER_SET;
                }
                None
            }
            Some(name) => {
                // The connection's own index is bounded by the subscription
                // limit; the group's member list may be much longer.
                let refs = self.by_conn.get(&conn);
                if refs.is_some_and(|refs| refs.iter().any(|r| r.is(node, Some(name)))) {
                    return false;
                }
                let at = match subs.groups.iter().position(|g| &*g.name == name) {
                    Some(at) => at,
                    None => {
                        self.bytes += memory::group(name.len());
                        subs.groups.push(Group {
                            name: Rc::from(name),
                            members: Vec::new(),
                            next: 0,
                        });
                        subs.groups.len() - 1
                    }
                };
                let Some(g) = subs.groups.get_mut(at) else {
                    return false;
                };
                // Join at the end of the rotation (§2.10 item 4).
                g.members.push(conn);
                Some(g.name.clone())
            }
        };
        let refs = self.by_conn.entry(conn).or_insert_with(|| {
            self.bytes += memory::SUBSCRIBER_INDEX;
            Vec::new()
        });
        refs.push(SubRef { node, group });
        self.bytes += LISTEN_BYTES;
        true
    }

    /// What the subscriptions hold, in memory-budget bytes (§7.4a).
    pub fn bytes(&self) -> usize {
        self.trie.bytes() + self.bytes
    }

    /// Remove exactly (pattern, group) of `conn`; no-op if absent.
    pub fn unlisten(&mut self, conn: OwnerId, pattern: &str, group: Option<&str>) {
        let Some(node) = self.trie.find(pattern) else {
            return;
        };
        let Some(refs) = self.by_conn.get_mut(&conn) else {
            return;
        };
        let Some(at) = refs.iter().position(|r| r.is(node, group)) else {
            return;
        };
        refs.swap_remove(at);
        if refs.is_empty() {
            remove_index(&mut self.by_conn, &conn);
            self.bytes -= memory::SUBSCRIBER_INDEX;
        }
        self.detach(conn, node, group);
    }

    /// Whether `conn` has this exact (pattern, group) subscription.
    pub fn has(&self, conn: OwnerId, pattern: &str, group: Option<&str>) -> bool {
        let Some(node) = self.trie.find(pattern) else {
            return false;
        };
        match group {
            None => self
                .trie
                .get(node)
                .is_some_and(|s| s.ungrouped.contains(&conn)),
            // As in `listen`: the connection's index, not the member list.
            Some(_) => self
                .by_conn
                .get(&conn)
                .is_some_and(|refs| refs.iter().any(|r| r.is(node, group))),
        }
    }

    /// Remove every subscription of `conn`: O(its subscriptions).
    pub fn remove_conn(&mut self, conn: OwnerId) {
        let Some(refs) = remove_index(&mut self.by_conn, &conn) else {
            return;
        };
        self.bytes -= memory::SUBSCRIBER_INDEX;
        for r in refs {
            self.detach(conn, r.node, r.group.as_deref());
        }
    }

    /// Number of (pattern, group) subscriptions of `conn`.
    pub fn count_of(&self, conn: OwnerId) -> usize {
        self.by_conn.get(&conn).map_or(0, Vec::len)
    }

    /// Deliver one signal on `channel` whose frame is `frame_len` bytes (§8.12):
    ///
    /// 1. every conn with at least one matching ungrouped subscription gets one
    ///    frame, however many of its patterns match; one that cannot take it is
    ///    closed as a slow consumer and not counted;
    /// 2. every matching (pattern, group) delivers to one member, round-robin
    ///    (see [`Group`] rotation in the module docs); members that cannot take
    ///    the frame are skipped, and if none can, the first one tried is closed
    ///    and the group delivers nothing.
    ///
    /// A conn closed in this publish is never asked again. Returns the number
    /// of `deliver` calls (the `<delivered>` of `ok <delivered>`).
    pub fn publish(&mut self, channel: &str, frame_len: usize, rx: &mut impl Recipients) -> usize {
        let Self { trie, scratch, .. } = self;
        trie.matches(channel, &mut scratch.stack, &mut scratch.nodes);
        if scratch.nodes.is_empty() {
            return 0;
        }
        let mut delivered = 0;

        let ungrouped = scratch.nodes.iter().filter_map(|&id| trie.get(id));
        gather(ungrouped.map(|s| &s.ungrouped), &mut scratch.conns);
        scratch.closed.clear();
        for &c in &scratch.conns {
            if rx.can_take(c, frame_len) {
                rx.deliver(c);
                delivered += 1;
            } else {
                rx.close_slow(c);
                scratch.closed.push(c);
            }
        }
        scratch.closed.sort_unstable_by_key(conn_key);

        for &id in &scratch.nodes {
            let Some(subs) = trie.get_mut(id) else {
                continue;
            };
            for g in &mut subs.groups {
                if g.deliver_one(frame_len, rx, &mut scratch.closed) {
                    delivered += 1;
                }
            }
        }
        delivered
    }

    /// (pattern, group, listeners) per subscription pair, sorted by pattern
    /// then group (no group first), bytewise (§2.10 item 5, §10).
    pub fn stats(&self) -> Vec<(String, Option<String>, usize)> {
        let mut out = Vec::new();
        for (id, subs) in self.trie.values() {
            let pattern = self.trie.pattern(id);
            if !subs.ungrouped.is_empty() {
                out.push((pattern.clone(), None, subs.ungrouped.len()));
            }
            for g in &subs.groups {
                out.push((pattern.clone(), Some(g.name.to_string()), g.members.len()));
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        out
    }

    /// Drop `conn` from (node, group) at the node and prune what became empty.
    /// The caller has removed the registration from the connection's index.
    fn detach(&mut self, conn: OwnerId, node: NodeId, group: Option<&str>) {
        self.bytes -= LISTEN_BYTES;
        let Some(subs) = self.trie.get_mut(node) else {
            return;
        };
        match group {
            None => {
                if remove_from(&mut subs.ungrouped, conn) && subs.ungrouped.is_empty() {
                    self.bytes -= memory::SUBSCRIBER_SET;
                }
            }
            Some(name) => {
                if let Some(at) = subs.groups.iter().position(|g| &*g.name == name)
                    && let Some(g) = subs.groups.get_mut(at)
                {
                    g.leave(conn);
                    if g.members.is_empty() {
                        self.bytes -= memory::group(name.len());
                        subs.groups.remove(at);
                    }
                }
            }
        }
        self.trie.prune(node);
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.trie.node_count()
    }
}

/// Key watches (§8.13): patterns matched against the key of every change.
#[derive(Default)]
pub struct Watches {
    trie: Trie<ConnSet>,
    by_conn: ConnMap<Vec<NodeId>>,
    scratch: Scratch,
    /// Registrations and index entries, in budget bytes (as in [`PubSub`]).
    bytes: usize,
}

impl Watches {
    pub fn new() -> Self {
        Self::default()
    }

    /// Watch `pattern`. Returns true if new, false if `conn` already watched it.
    pub fn watch(&mut self, conn: OwnerId, pattern: &str) -> bool {
        let node = self.trie.insert(pattern);
        let Some(set) = self.trie.get_mut(node) else {
            return false;
        };
        let first = set.is_empty();
        if !set.insert(conn) {
            return false;
        }
        if first {
            self.bytes += memory::SUBSCRIBER_SET;
        }
        let nodes = self.by_conn.entry(conn).or_insert_with(|| {
            self.bytes += memory::SUBSCRIBER_INDEX;
            Vec::new()
        });
        nodes.push(node);
        self.bytes += WATCH_BYTES;
        true
    }

    /// What the watches hold, in memory-budget bytes (§7.4a).
    pub fn bytes(&self) -> usize {
        self.trie.bytes() + self.bytes
    }

    /// Remove exactly `pattern` of `conn`; no-op if absent.
    pub fn unwatch(&mut self, conn: OwnerId, pattern: &str) {
        let Some(node) = self.trie.find(pattern) else {
            return;
        };
        let Some(set) = self.trie.get_mut(node) else {
            return;
        };
        if !remove_from(set, conn) {
            return;
        }
        self.bytes -= WATCH_BYTES;
        if set.is_empty() {
            self.bytes -= memory::SUBSCRIBER_SET;
        }
        if let Some(nodes) = self.by_conn.get_mut(&conn) {
            if let Some(at) = nodes.iter().position(|&n| n == node) {
                nodes.swap_remove(at);
            }
            if nodes.is_empty() {
                remove_index(&mut self.by_conn, &conn);
                self.bytes -= memory::SUBSCRIBER_INDEX;
            }
        }
        self.trie.prune(node);
    }

    /// Whether `conn` watches exactly `pattern`.
    pub fn has(&self, conn: OwnerId, pattern: &str) -> bool {
        self.trie
            .find(pattern)
            .and_then(|node| self.trie.get(node))
            .is_some_and(|set| set.contains(&conn))
    }

    /// Remove every watch of `conn`: O(its watches).
    pub fn remove_conn(&mut self, conn: OwnerId) {
        let Some(nodes) = remove_index(&mut self.by_conn, &conn) else {
            return;
        };
        self.bytes -= memory::SUBSCRIBER_INDEX + nodes.len() * WATCH_BYTES;
        for node in nodes {
            if let Some(set) = self.trie.get_mut(node)
                && remove_from(set, conn)
                && set.is_empty()
            {
                self.bytes -= memory::SUBSCRIBER_SET;
            }
            self.trie.prune(node);
        }
    }

    /// Number of patterns `conn` watches.
    pub fn count_of(&self, conn: OwnerId) -> usize {
        self.by_conn.get(&conn).map_or(0, Vec::len)
    }

    /// Call `f` once per conn with at least one pattern matching `key`. With
    /// several matching patterns the order is ascending (slot, generation);
    /// with one it is that pattern's set order. Either way the same state and
    /// history give the same order.
    pub fn matching(&mut self, key: &str, mut f: impl FnMut(OwnerId)) {
        let Self { trie, scratch, .. } = self;
        trie.matches(key, &mut scratch.stack, &mut scratch.nodes);
        gather(
            scratch.nodes.iter().filter_map(|&id| trie.get(id)),
            &mut scratch.conns,
        );
        for &c in &scratch.conns {
            f(c);
        }
    }

    /// True if no watch exists at all (lets the server skip formatting events).
    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty()
    }

    /// (pattern, watchers), sorted by pattern bytewise (§2.10 item 5, §10).
    pub fn stats(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = self
            .trie
            .values()
            .map(|(id, set)| (self.trie.pattern(id), set.len()))
            .collect();
        out.sort_unstable();
        out
    }

    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.trie.node_count()
    }
}

#[cfg(test)]
mod tests;
