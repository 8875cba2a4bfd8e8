//! A token trie over `.`-separated subjects, matching NATS-style patterns (§3.5).
//!
//! A pattern is stored as a path from the root, one node per token: a literal
//! token is a keyed child, `*` and `>` are two dedicated child slots so matching
//! never hashes them. Each node carries a payload `V` for the patterns that end
//! exactly there. Matching a subject walks the trie with an explicit stack (no
//! recursion on client-supplied lengths): at each node it follows the literal
//! child for the next token, the `*` child, and reports the `>` child, so the
//! cost is proportional to the subject's tokens times the wildcard branching,
//! never to the number of stored patterns.
//!
//! Invariants:
//! * every node but the root has a non-empty payload or at least one child
//!   (callers [`Trie::prune`] after emptying a payload), so the node count
//!   tracks live patterns and memory returns when subscriptions go;
//! * a `>` node never has children (the caller validated `>` as last token);
//! * node ids are arena indices, stable while the node is live; freed slots are
//!   reused, so a caller must not keep the id of a node it let be pruned.

use crate::state::memory;
use std::collections::HashMap;
use std::rc::Rc;

/// Index of a node in the trie's arena.
pub type NodeId = usize;

/// "No child" in the `star` / `gt` slots.
const NIL: NodeId = usize::MAX;
const ROOT: NodeId = 0;
/// Arena slots kept when the trie empties (a few short patterns' worth).
const KEEP_NODES: usize = 16;

/// What a node stores for the patterns that end at it.
pub trait Payload: Default {
    /// True when no subscription ends here any more (the node may be pruned).
    fn is_empty(&self) -> bool;
}

/// How a node hangs off its parent; needed to detach it when pruning.
enum Edge {
    Root,
    /// The token is shared (`Rc`) with the parent's child map key, so each
    /// literal token is allocated once however it is referenced.
    Literal(Rc<str>),
    Star,
    Gt,
    /// A slot on the free list.
    Free,
}

struct Node<V> {
    value: V,
    literals: HashMap<Rc<str>, NodeId>,
    star: NodeId,
    gt: NodeId,
    parent: NodeId,
    edge: Edge,
}

impl<V: Default> Node<V> {
    fn new(parent: NodeId, edge: Edge) -> Self {
        Node {
            value: V::default(),
            literals: HashMap::new(),
            star: NIL,
            gt: NIL,
            parent,
            edge,
        }
    }

    fn is_leaf(&self) -> bool {
        self.literals.is_empty() && self.star == NIL && self.gt == NIL
    }
}

/// The token of a pattern, classified (§3.5: only an exact `*` or `>` is a wildcard).
enum Tok<'a> {
    Literal(&'a str),
    Star,
    Gt,
}

fn classify(tok: &str) -> Tok<'_> {
    match tok {
        "*" => Tok::Star,
        ">" => Tok::Gt,
        lit => Tok::Literal(lit),
    }
}

/// What a live node costs the memory budget (§7.4a), by its edge.
fn node_bytes<V>(edge: &Edge) -> usize {
    let literal = match edge {
        Edge::Literal(t) => Some(t.len()),
        _ => None,
    };
    memory::trie_node(std::mem::size_of::<Node<V>>(), literal)
}

/// A pattern trie with payload `V` at pattern ends.
pub struct Trie<V> {
    nodes: Vec<Node<V>>,
    free: Vec<NodeId>,
    /// [`node_bytes`] of every live node but the root.
    bytes: usize,
}

impl<V: Payload> Default for Trie<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Payload> Trie<V> {
    pub fn new() -> Self {
        Trie {
            nodes: vec![Node::new(NIL, Edge::Root)],
            free: Vec::new(),
            bytes: 0,
        }
    }

    /// What the live nodes cost the memory budget, kept as nodes come and go.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Live nodes, the root included (1 when empty).
    pub fn node_count(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// The node for `pattern`, created with its path if missing.
    pub fn insert(&mut self, pattern: &str) -> NodeId {
        let mut at = ROOT;
        for tok in pattern.split('.') {
            at = self.child_or_insert(at, classify(tok));
        }
        at
    }

    /// The node for `pattern`, if it exists.
    pub fn find(&self, pattern: &str) -> Option<NodeId> {
        let mut at = ROOT;
        for tok in pattern.split('.') {
            let node = self.nodes.get(at)?;
            at = match classify(tok) {
                Tok::Literal(lit) => *node.literals.get(lit)?,
                Tok::Star => node.star,
                Tok::Gt => node.gt,
            };
            if at == NIL {
                return None;
            }
        }
        Some(at)
    }

    pub fn get(&self, id: NodeId) -> Option<&V> {
        self.nodes.get(id).map(|n| &n.value)
    }

    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut V> {
        self.nodes.get_mut(id).map(|n| &mut n.value)
    }

    /// Live nodes whose payload is not empty, in arena order.
    pub fn values(&self) -> impl Iterator<Item = (NodeId, &V)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !matches!(n.edge, Edge::Free) && !n.value.is_empty())
            .map(|(id, n)| (id, &n.value))
    }

    /// The pattern a node stands for, rebuilt from its path (only `stats` needs
    /// it, so patterns are not stored a second time as strings).
    pub fn pattern(&self, id: NodeId) -> String {
        let mut toks: Vec<&str> = Vec::new();
        let mut at = id;
        while let Some(node) = self.nodes.get(at) {
            match &node.edge {
                Edge::Literal(t) => toks.push(t),
                Edge::Star => toks.push("*"),
                Edge::Gt => toks.push(">"),
                Edge::Root | Edge::Free => break,
            }
            at = node.parent;
        }
        toks.reverse();
        toks.join(".")
    }

    /// Ids of every node with a non-empty payload whose pattern matches
    /// `subject`, into `out` (cleared first). Each matching node is reported
    /// once: a node's pattern consumes exactly its depth in tokens, so only one
    /// walk can reach it. `stack` is the caller's scratch, kept across calls so
    /// matching does not allocate once warm.
    pub fn matches(&self, subject: &str, stack: &mut Vec<(NodeId, usize)>, out: &mut Vec<NodeId>) {
        stack.clear();
        out.clear();
        // (node, byte offset where the remaining tokens start); an offset past
        // the end means no token is left. `a.` has two tokens, the second
        // empty, so "no token left" cannot be told from "empty rest" by the
        // slice alone.
        let end = subject.len();
        stack.push((ROOT, 0));
        while let Some((id, pos)) = stack.pop() {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            let Some(rest) = subject.get(pos..) else {
                // All tokens consumed: the pattern ending here matches exactly.
                if !node.value.is_empty() {
                    out.push(id);
                }
                continue;
            };
            let (tok, next) = match rest.split_once('.') {
                Some((tok, _)) => (tok, pos + tok.len() + 1),
                None => (rest, end + 1),
            };
            // `>` matches one or more tokens, and at least `tok` remains.
            if let Some(gt) = self.nodes.get(node.gt)
                && !gt.value.is_empty()
            {
                out.push(node.gt);
            }
            if node.star != NIL {
                stack.push((node.star, next));
            }
            if let Some(&child) = node.literals.get(tok) {
                stack.push((child, next));
            }
        }
    }

    /// Free `id` and then its ancestors while they have neither payload nor
    /// children. Call after emptying a node's payload.
    pub fn prune(&mut self, id: NodeId) {
        let mut at = id;
        while at != ROOT {
            let Some(node) = self.nodes.get_mut(at) else {
                return;
            };
            if matches!(node.edge, Edge::Free) || !node.is_leaf() || !node.value.is_empty() {
                break;
            }
            let parent = node.parent;
            let edge = std::mem::replace(&mut node.edge, Edge::Free);
            self.bytes -= node_bytes::<V>(&edge);
            // Drop whatever capacity the emptied payload still holds.
            node.value = V::default();
            node.literals = HashMap::new();
            self.free.push(at);
            if let Some(p) = self.nodes.get_mut(parent) {
                match edge {
                    Edge::Literal(tok) => {
                        p.literals.remove(&*tok);
                        if p.literals.is_empty() {
                            self.bytes -= memory::LITERALS;
                        }
                        // Give memory back after a wide fan of patterns goes;
                        // the 1/4 threshold keeps shrinking amortised O(1).
                        if p.literals.len() * 4 < p.literals.capacity() {
                            p.literals.shrink_to_fit();
                        }
                    }
                    Edge::Star => p.star = NIL,
                    Edge::Gt => p.gt = NIL,
                    Edge::Root | Edge::Free => {}
                }
            }
            at = parent;
        }
        if self.node_count() == 1 {
            // Everything is gone: drop the arena's tail and the free list too,
            // but keep a small arena so listen/unlisten on an otherwise empty
            // trie does not reallocate every time.
            self.nodes.truncate(1);
            if self.nodes.capacity() > KEEP_NODES {
                self.nodes.shrink_to(KEEP_NODES);
            }
            self.free = Vec::new();
        }
    }

    fn child_or_insert(&mut self, at: NodeId, tok: Tok<'_>) -> NodeId {
        let Some(node) = self.nodes.get(at) else {
            return at;
        };
        let existing = match tok {
            Tok::Literal(lit) => node.literals.get(lit).copied().unwrap_or(NIL),
            Tok::Star => node.star,
            Tok::Gt => node.gt,
        };
        if existing != NIL {
            return existing;
        }
        let edge = match tok {
            Tok::Literal(lit) => Edge::Literal(Rc::from(lit)),
            Tok::Star => Edge::Star,
            Tok::Gt => Edge::Gt,
        };
        // The parent's map key shares the node's token allocation.
        let key = match &edge {
            Edge::Literal(t) => Some(t.clone()),
            _ => None,
        };
        let star = matches!(edge, Edge::Star);
        self.bytes += node_bytes::<V>(&edge);
        if key.is_some() && node.literals.is_empty() {
            self.bytes += memory::LITERALS;
        }
        let child = self.alloc(Node::new(at, edge));
        if let Some(node) = self.nodes.get_mut(at) {
            match key {
                Some(key) => {
                    node.literals.insert(key, child);
                }
                None if star => node.star = child,
                None => node.gt = child,
            }
        }
        child
    }

    fn alloc(&mut self, node: Node<V>) -> NodeId {
        match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.nodes.get_mut(id) {
                    *slot = node;
                }
                id
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::subjects::tests::brute;

    /// Test payload: how many times the pattern was inserted.
    #[derive(Default)]
    struct Count(u32);

    impl Payload for Count {
        fn is_empty(&self) -> bool {
            self.0 == 0
        }
    }

    fn add(t: &mut Trie<Count>, pattern: &str) {
        let id = t.insert(pattern);
        if let Some(c) = t.get_mut(id) {
            c.0 += 1;
        }
    }

    fn remove(t: &mut Trie<Count>, pattern: &str) {
        let Some(id) = t.find(pattern) else {
            return;
        };
        if let Some(c) = t.get_mut(id) {
            c.0 = c.0.saturating_sub(1);
        }
        t.prune(id);
    }

    /// Patterns matching `subject`, sorted.
    fn matched(t: &Trie<Count>, subject: &str) -> Vec<String> {
        let (mut stack, mut out) = (Vec::new(), Vec::new());
        t.matches(subject, &mut stack, &mut out);
        let mut v: Vec<String> = out.iter().map(|&id| t.pattern(id)).collect();
        v.sort();
        v
    }

    fn matches_one(pattern: &str, subject: &str) -> bool {
        let mut t = Trie::new();
        add(&mut t, pattern);
        matched(&t, subject) == [pattern]
    }

    #[test]
    fn spec_match_table() {
        // §3.5, row by row: (pattern, matches, does not match).
        let table: &[(&str, &[&str], &[&str])] = &[
            (
                "orders.created",
                &["orders.created"],
                &["orders.created.eu", "orders"],
            ),
            (
                "orders.*",
                &["orders.created", "orders.x"],
                &["orders", "orders.a.b"],
            ),
            ("orders.>", &["orders.a", "orders.a.b.c"], &["orders"]),
            ("*.eu", &["orders.eu", "users.eu"], &["eu", "a.b.eu"]),
            ("*", &["orders", "deploy-lock", "job:42"], &["orders.a"]),
            (
                ">",
                &[
                    "orders",
                    "orders.a",
                    "a.b.c.d",
                    "deploy-lock",
                    "job:42",
                    "x*",
                    "",
                ],
                &[],
            ),
        ];
        for &(pattern, yes, no) in table {
            for s in yes {
                assert!(matches_one(pattern, s), "{pattern} should match {s}");
                assert!(brute(pattern, s), "brute: {pattern} should match {s}");
            }
            for s in no {
                assert!(!matches_one(pattern, s), "{pattern} should not match {s}");
                assert!(!brute(pattern, s), "brute: {pattern} should not match {s}");
            }
        }
    }

    #[test]
    fn empty_tokens_are_tokens() {
        assert!(matches_one("a..b", "a..b"));
        assert!(matches_one("a.*.b", "a..b"));
        assert!(matches_one("a.>", "a..b"));
        assert!(!matches_one("a.b", "a..b"));
        assert!(!matches_one("a.*", "a..b"));
        // `a.` is `a` then an empty token.
        assert!(matches_one("a.*", "a."));
        assert!(matches_one("a.>", "a."));
        assert!(matches_one("a.", "a."));
        assert!(!matches_one("a", "a."));
        assert!(!matches_one("a.", "a"));
        assert!(matches_one("*.a", ".a"));
        // The empty subject is one empty token.
        assert!(matches_one("*", ""));
        assert!(matches_one("", ""));
        assert!(!matches_one("", "a"));
    }

    #[test]
    fn wildcard_characters_inside_a_subject_token_are_literal() {
        // A key like `x*` is only reachable through a wildcard (§3.5).
        assert!(matches_one(">", "x*"));
        assert!(matches_one("*", "x*"));
        assert!(matches_one("a.*", "a.*"));
        assert!(!matches_one("a.b", "a.*"));
    }

    #[test]
    fn every_overlapping_pattern_is_reported_once() {
        let mut t = Trie::new();
        for p in [
            "orders.created",
            "orders.*",
            "orders.>",
            "*.created",
            ">",
            "*.*",
            "x.>",
        ] {
            add(&mut t, p);
        }
        assert_eq!(
            matched(&t, "orders.created"),
            [
                "*.*",
                "*.created",
                ">",
                "orders.*",
                "orders.>",
                "orders.created"
            ]
        );
        assert_eq!(matched(&t, "orders"), [">"]);
        assert_eq!(matched(&t, "orders.a.b"), [">", "orders.>"]);
    }

    #[test]
    fn find_distinguishes_wildcards_from_literals() {
        let mut t = Trie::new();
        add(&mut t, "a.*");
        add(&mut t, "a.>");
        assert!(t.find("a.*").is_some());
        assert!(t.find("a.>").is_some());
        assert!(t.find("a.b").is_none());
        assert!(t.find("a").is_some(), "interior node exists");
        assert!(t.find("b").is_none());
        assert_ne!(t.find("a.*"), t.find("a.>"));
    }

    #[test]
    fn prune_returns_to_the_root_only() {
        let mut t = Trie::new();
        assert_eq!(t.node_count(), 1);
        add(&mut t, "a.b.c");
        add(&mut t, "a.b");
        add(&mut t, "a.*.>");
        assert_eq!(t.node_count(), 6);
        remove(&mut t, "a.b");
        assert_eq!(t.node_count(), 6, "a.b still leads to a.b.c");
        remove(&mut t, "a.b.c");
        assert_eq!(t.node_count(), 4);
        assert_eq!(matched(&t, "a.x.y"), ["a.*.>"]);
        remove(&mut t, "a.*.>");
        assert_eq!(t.node_count(), 1);
        assert_eq!(t.values().count(), 0);
        // Freed slots are reused and the trie still works.
        add(&mut t, "q.>");
        assert_eq!(matched(&t, "q.r"), ["q.>"]);
    }

    use crate::test_rng::XorShift as Rng;

    const ALPHABET: [&str; 4] = ["a", "b", "", "cd"];

    fn random_pattern(rng: &mut Rng) -> String {
        let n = 1 + rng.below(4);
        let mut toks = Vec::with_capacity(n);
        for i in 0..n {
            toks.push(match rng.below(10) {
                0..=1 => "*",
                2 if i + 1 == n => ">",
                _ => ALPHABET[rng.below(4)],
            });
        }
        toks.join(".")
    }

    fn random_subject(rng: &mut Rng) -> String {
        let n = 1 + rng.below(5);
        let toks: Vec<&str> = (0..n).map(|_| ALPHABET[rng.below(4)]).collect();
        toks.join(".")
    }

    #[test]
    fn random_patterns_agree_with_brute_force() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut subjects = 0;
        for _round in 0..50 {
            let mut t = Trie::new();
            let mut patterns: Vec<String> = (0..200).map(|_| random_pattern(&mut rng)).collect();
            for p in &patterns {
                add(&mut t, p);
            }
            patterns.sort();
            patterns.dedup();
            for _ in 0..200 {
                let s = random_subject(&mut rng);
                let want: Vec<String> = patterns.iter().filter(|p| brute(p, &s)).cloned().collect();
                assert_eq!(matched(&t, &s), want, "subject {s:?}");
                subjects += 1;
            }
            // Remove every inserted copy of half the patterns; the rest still match.
            let (gone, kept) = patterns.split_at(patterns.len() / 2);
            for p in gone {
                while t
                    .find(p)
                    .and_then(|id| t.get(id))
                    .is_some_and(|c| !c.is_empty())
                {
                    remove(&mut t, p);
                }
            }
            for _ in 0..50 {
                let s = random_subject(&mut rng);
                let want: Vec<String> = kept.iter().filter(|p| brute(p, &s)).cloned().collect();
                assert_eq!(matched(&t, &s), want, "after removal, subject {s:?}");
            }
            for p in kept {
                while t
                    .find(p)
                    .and_then(|id| t.get(id))
                    .is_some_and(|c| !c.is_empty())
                {
                    remove(&mut t, p);
                }
            }
            assert_eq!(t.node_count(), 1, "fully pruned");
        }
        assert_eq!(subjects, 10_000);
    }
}
