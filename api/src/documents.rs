//! Parsed GraphQL documents by query text. Front-ends and BI tools send the
//! same few documents over and over; parsing one (async-graphql's pest
//! parser) was half the CPU of a cheap request, so each distinct text is
//! parsed once and the document reused. Validation still runs per request.
use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::parser::{parse_query, Error};
use lru::LruCache;

/// Documents kept (least recently used evicted first).
const CAPACITY: usize = 512;
/// Longer texts are parsed every time rather than kept.
const MAX_CACHED_LEN: usize = 16 * 1024;

pub struct DocumentCache {
    docs: Mutex<LruCache<String, ExecutableDocument>>,
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self {
            docs: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).expect("capacity is not zero"),
            )),
        }
    }
}

impl DocumentCache {
    /// The parsed document of `query`, from the cache when it was seen before.
    pub fn parse(&self, query: &str) -> Result<ExecutableDocument, Error> {
        if query.len() > MAX_CACHED_LEN {
            return parse_query(query);
        }
        if let Some(doc) = self.lock().get(query) {
            return Ok(doc.clone());
        }
        // Parse outside the lock; a rare double parse of one text is harmless.
        let doc = parse_query(query)?;
        self.lock().put(query.to_owned(), doc.clone());
        Ok(doc)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, ExecutableDocument>> {
        // A poisoned lock only means another request panicked mid-insert;
        // the cache holds no invariant beyond its entries.
        self.docs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
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
    fn long_documents_are_not_kept() {
        let cache = DocumentCache::default();
        let q = format!("{{ me {{ subject }} }} # {}", "x".repeat(MAX_CACHED_LEN));
        assert!(cache.parse(&q).is_ok());
        assert!(cache.is_empty());
    }
}
