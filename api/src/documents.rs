//! Parsed GraphQL documents by query text. Front-ends and BI tools send the
//! same few documents over and over; parsing one (async-graphql's pest
//! parser) was half the CPU of a cheap request, so each distinct text is
//! parsed once and the document reused. Validation still runs per request.
//!
//! The cache is bounded by the bytes of text it holds, not by a count: a
//! parsed document takes about 40 times its text (600 distinct 16 KB
//! documents once held 375 MB), so a byte budget bounds memory whatever
//! documents clients send.
//!
//! Each document also remembers the operations and variables it passed
//! async-graphql's validation with ([`Variant`]): validation is a function
//! of the schema, the document, the operation and the variables, so a
//! repeat of one of them is run through the schema that skips the rules
//! (`graphql::Schemas::repeat`) and keeps only the cost and depth
//! measures. The rules were 4% of the server's CPU on a page of deals.
use std::sync::Mutex;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::parser::{parse_query, Error};
use lru::LruCache;

/// Longer texts are parsed every time rather than kept.
const MAX_CACHED_LEN: usize = 16 * 1024;
/// Default budget of cached text.
pub const DEFAULT_BUDGET_BYTES: usize = 1 << 20;
/// Variants remembered per document (a front-end's filters and pages;
/// past this the oldest is forgotten).
const MAX_VARIANTS: usize = 16;

struct Cached {
    docs: LruCache<String, Entry>,
    /// Bytes of text of the cached documents and of their variants.
    bytes: usize,
}

struct Entry {
    doc: ExecutableDocument,
    /// The variants that passed validation, oldest first.
    validated: Vec<Variant>,
}

impl Entry {
    /// Bytes of the remembered variants (the text is counted by its key).
    fn variant_bytes(&self) -> usize {
        self.validated.iter().map(Variant::bytes).sum()
    }
}

/// An operation of a document with its variables, as validation saw them:
/// the operation's name and the variables as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    operation: Option<String>,
    variables: String,
}

impl Variant {
    /// Longer variables (bulk inputs) are validated every time.
    const MAX_VARIABLES_LEN: usize = 1024;

    /// The variant of a request; `None` when it is not remembered.
    pub fn of(req: &async_graphql::Request) -> Option<Self> {
        let variables = serde_json::to_string(&req.variables).ok()?;
        (variables.len() <= Self::MAX_VARIABLES_LEN).then(|| Self {
            operation: req.operation_name.clone(),
            variables,
        })
    }

    fn bytes(&self) -> usize {
        self.variables.len() + self.operation.as_ref().map_or(0, String::len)
    }
}

pub struct DocumentCache {
    inner: Mutex<Cached>,
    budget: usize,
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET_BYTES)
    }
}

impl DocumentCache {
    /// A cache holding at most `budget` bytes of query text.
    pub fn with_budget(budget: usize) -> Self {
        Self {
            inner: Mutex::new(Cached {
                docs: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    /// The parsed document of `query`, from the cache when it was seen before.
    pub fn parse(&self, query: &str) -> Result<ExecutableDocument, Error> {
        if query.len() > MAX_CACHED_LEN.min(self.budget) {
            return parse_query(query);
        }
        if let Some(entry) = self.lock().docs.get(query) {
            return Ok(entry.doc.clone());
        }
        // Parse outside the lock; a rare double parse of one text is harmless.
        let doc = parse_query(query)?;
        let mut cache = self.lock();
        let entry = Entry {
            doc: doc.clone(),
            validated: Vec::new(),
        };
        match cache.docs.put(query.to_owned(), entry) {
            None => cache.bytes += query.len(),
            Some(old) => cache.bytes -= old.variant_bytes(),
        }
        cache.evict(self.budget);
        Ok(doc)
    }

    /// Whether `query` (cached) passed validation as `variant`.
    pub fn validated(&self, query: &str, variant: &Variant) -> bool {
        self.lock()
            .docs
            .peek(query)
            .is_some_and(|e| e.validated.contains(variant))
    }

    /// Records that `query` passed validation as `variant` (only while the
    /// document is cached).
    pub fn mark_validated(&self, query: &str, variant: Variant) {
        let mut cache = self.lock();
        let Some(entry) = cache.docs.peek_mut(query) else {
            return;
        };
        if entry.validated.contains(&variant) {
            return;
        }
        let mut delta = variant.bytes() as isize;
        if entry.validated.len() >= MAX_VARIANTS {
            delta -= entry.validated.remove(0).bytes() as isize;
        }
        entry.validated.push(variant);
        cache.bytes = cache.bytes.saturating_add_signed(delta);
        cache.evict(self.budget);
    }

    /// Bytes of query text held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        // A poisoned lock only means another request panicked mid-insert;
        // the cache holds no invariant beyond its entries.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn variants(&self, query: &str) -> usize {
        self.lock()
            .docs
            .peek(query)
            .map_or(0, |e| e.validated.len())
    }

    pub fn len(&self) -> usize {
        self.lock().docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Cached {
    /// Drops the least recently used documents until `budget` holds.
    fn evict(&mut self, budget: usize) {
        while self.bytes > budget {
            match self.docs.pop_lru() {
                Some((text, entry)) => self.bytes -= text.len() + entry.variant_bytes(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_returns_the_same_document() {
        let cache = DocumentCache::default();
        let a = cache.parse("{ me { subject } }").unwrap();
        let b = cache.parse("{ me { subject } }").unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn errors_are_not_cached() {
        let cache = DocumentCache::default();
        assert!(cache.parse("{ me {").is_err());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_text_budget_evicts_the_least_recently_used() {
        let cache = DocumentCache::with_budget(110);
        let q = |i: usize| format!("{{ me {{ subject }} }} # {i:030}");
        for i in 0..10 {
            cache.parse(&q(i)).unwrap();
            assert!(cache.bytes() <= 110, "{} bytes held", cache.bytes());
        }
        // Each text is 51 bytes: the last two are kept.
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.bytes(), 2 * q(0).len());
    }

    #[test]
    fn long_documents_are_not_kept() {
        let cache = DocumentCache::default();
        let q = format!("{{ me {{ subject }} }} # {}", "x".repeat(MAX_CACHED_LEN));
        assert!(cache.parse(&q).is_ok());
        assert!(cache.is_empty());
    }

    fn variant(op: Option<&str>, vars: serde_json::Value) -> Variant {
        let mut req = async_graphql::Request::new("{ me { subject } }")
            .variables(async_graphql::Variables::from_json(vars));
        req.operation_name = op.map(str::to_owned);
        Variant::of(&req).unwrap()
    }

    #[test]
    fn validation_is_remembered_per_operation_and_variables() {
        let cache = DocumentCache::default();
        let q = "query A($n: Int) { me { subject } } query B { me { subject } }";
        let a5 = variant(Some("A"), serde_json::json!({ "n": 5 }));
        // Not cached yet: nothing is remembered.
        cache.mark_validated(q, a5.clone());
        assert!(!cache.validated(q, &a5));
        cache.parse(q).unwrap();
        cache.mark_validated(q, a5.clone());
        assert!(cache.validated(q, &a5));
        assert!(!cache.validated(q, &variant(Some("A"), serde_json::json!({ "n": "x" }))));
        assert!(!cache.validated(q, &variant(Some("B"), serde_json::json!({ "n": 5 }))));
        assert!(!cache.validated(q, &variant(None, serde_json::json!({ "n": 5 }))));
        assert!(!cache.validated("{ me { subject } }", &a5));
    }

    #[test]
    fn variants_are_bounded_and_counted_in_the_budget() {
        let cache = DocumentCache::default();
        let q = "query($n: Int) { me { subject } }";
        cache.parse(q).unwrap();
        for n in 0..(MAX_VARIANTS + 4) {
            cache.mark_validated(q, variant(None, serde_json::json!({ "n": n })));
        }
        assert_eq!(cache.variants(q), MAX_VARIANTS);
        // The oldest went first.
        assert!(!cache.validated(q, &variant(None, serde_json::json!({ "n": 0 }))));
        assert!(cache.validated(
            q,
            &variant(None, serde_json::json!({ "n": MAX_VARIANTS + 3 }))
        ));
        let held: usize = q.len()
            + (4..MAX_VARIANTS + 4)
                .map(|n| variant(None, serde_json::json!({ "n": n })).bytes())
                .sum::<usize>();
        assert_eq!(cache.bytes(), held);
        // Long variables are not remembered.
        let mut req = async_graphql::Request::new(q);
        req.variables = async_graphql::Variables::from_json(
            serde_json::json!({ "n": "x".repeat(Variant::MAX_VARIABLES_LEN) }),
        );
        assert!(Variant::of(&req).is_none());
    }

    #[test]
    fn variants_count_against_the_text_budget() {
        let q = "query($n: Int) { me { subject } }";
        let v = variant(None, serde_json::json!({ "n": 1 }));
        let cache = DocumentCache::with_budget(q.len() + v.bytes());
        cache.parse(q).unwrap();
        cache.mark_validated(q, v.clone());
        assert_eq!(cache.bytes(), q.len() + v.bytes());
        // One more variant passes the budget: the document goes, with them.
        cache.mark_validated(q, variant(None, serde_json::json!({ "n": 2 })));
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
    }
}
