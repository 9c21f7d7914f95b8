//! Parsed GraphQL documents by query text. Front-ends and BI tools send the
//! same few documents over and over; parsing one (async-graphql's pest
//! parser) was half the CPU of a cheap request, so each distinct text is
//! parsed once and the document reused. Validation still runs per request.
//!
//! The cache is bounded by the bytes of text it holds, not by a count: a
//! parsed document takes about 40 times its text (600 distinct 16 KB
//! documents once held 375 MB), so a byte budget bounds memory whatever
//! documents clients send.
use std::sync::Mutex;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::parser::{parse_query, Error};
use lru::LruCache;

/// Longer texts are parsed every time rather than kept.
const MAX_CACHED_LEN: usize = 16 * 1024;
/// Default budget of cached text.
pub const DEFAULT_BUDGET_BYTES: usize = 1 << 20;

struct Cached {
    docs: LruCache<String, ExecutableDocument>,
    /// Bytes of text of the cached documents.
    bytes: usize,
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
        if let Some(doc) = self.lock().docs.get(query) {
            return Ok(doc.clone());
        }
        // Parse outside the lock; a rare double parse of one text is harmless.
        let doc = parse_query(query)?;
        let mut cache = self.lock();
        if cache.docs.put(query.to_owned(), doc.clone()).is_none() {
            cache.bytes += query.len();
        }
        while cache.bytes > self.budget {
            match cache.docs.pop_lru() {
                Some((text, _)) => cache.bytes -= text.len(),
                None => break,
            }
        }
        Ok(doc)
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

    pub fn len(&self) -> usize {
        self.lock().docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}
