//! Persisted documents: Automatic Persisted Queries (Apollo's protocol: the
//! `persistedQuery` request extension with a `sha256Hash`) and the
//! allow-list mode, which serves only registered documents.
//!
//! Resolved at the HTTP edge, before the document is parsed and priced: a
//! document that arrives by hash goes through the same nesting, depth and
//! cost checks as one sent in full. (async-graphql's own APQ extension fills
//! the text in during execution, after those checks, so it is not used.)
//!
//! The APQ store is bounded by the bytes of text it holds, least recently
//! used first out, like the parsed-document cache.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use async_graphql::Request;
use lru::LruCache;
use sha2::{Digest, Sha256};

/// The SHA-256 of a document's text, as 64 lower-case hex digits.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Why a request is refused: message and `extensions.code`.
pub type Refusal = (String, &'static str);

pub const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
pub const NOT_ALLOWED: &str = "PERSISTED_QUERY_NOT_ALLOWED";
pub const NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";

struct Store {
    texts: LruCache<String, String>,
    bytes: usize,
}

pub struct Persisted {
    /// Automatic persisted queries; None when off.
    apq: Option<Mutex<Store>>,
    apq_budget: usize,
    /// The registered documents by hash (allow-list mode), if any.
    allowed: Option<HashMap<String, String>>,
}

impl Default for Persisted {
    fn default() -> Self {
        Self::new(1 << 20, None)
    }
}

impl Persisted {
    /// `apq_budget` bytes of text for APQ (0: off); `allowed`: the allow-list.
    pub fn new(apq_budget: usize, allowed: Option<HashMap<String, String>>) -> Self {
        Self {
            apq: (apq_budget > 0).then(|| {
                Mutex::new(Store {
                    texts: LruCache::unbounded(),
                    bytes: 0,
                })
            }),
            apq_budget,
            allowed,
        }
    }

    /// Whether only registered documents run.
    pub fn allow_list(&self) -> bool {
        self.allowed.is_some()
    }

    /// Fills in the request's text from its `persistedQuery` hash, stores a
    /// text sent with its hash, and in allow-list mode refuses any document
    /// not registered. Idempotent.
    pub fn resolve(&self, req: &mut Request) -> Result<(), Refusal> {
        let hash = match req.extensions.get("persistedQuery") {
            None => None,
            Some(ext) => Some(parse_extension(ext)?),
        };
        match hash {
            None => {
                if let Some(allowed) = &self.allowed {
                    if !allowed.contains_key(&sha256_hex(&req.query)) {
                        return Err(not_registered());
                    }
                }
                Ok(())
            }
            Some(hash) if req.query.is_empty() => {
                if let Some(allowed) = &self.allowed {
                    return match allowed.get(&hash) {
                        Some(text) => {
                            req.query = text.clone();
                            Ok(())
                        }
                        None => Err(not_registered()),
                    };
                }
                let Some(apq) = &self.apq else {
                    return Err(("PersistedQueryNotSupported".to_owned(), NOT_SUPPORTED));
                };
                match lock(apq).texts.get(&hash) {
                    Some(text) => {
                        req.query = text.clone();
                        Ok(())
                    }
                    // Apollo clients look for this exact message, then send
                    // the text with its hash.
                    None => Err(("PersistedQueryNotFound".to_owned(), NOT_FOUND)),
                }
            }
            Some(hash) => {
                if sha256_hex(&req.query) != hash {
                    return Err((
                        "extensions.persistedQuery.sha256Hash: the provided sha does not match \
                         the query's SHA-256"
                            .to_owned(),
                        "BAD_USER_INPUT",
                    ));
                }
                if let Some(allowed) = &self.allowed {
                    return if allowed.contains_key(&hash) {
                        Ok(())
                    } else {
                        Err(not_registered())
                    };
                }
                if let Some(apq) = &self.apq {
                    self.store(apq, hash, &req.query);
                }
                Ok(())
            }
        }
    }

    fn store(&self, apq: &Mutex<Store>, hash: String, text: &str) {
        if text.len() > self.apq_budget {
            return;
        }
        let mut store = lock(apq);
        if store.texts.put(hash, text.to_owned()).is_none() {
            store.bytes += text.len();
        }
        while store.bytes > self.apq_budget {
            match store.texts.pop_lru() {
                Some((_, t)) => store.bytes -= t.len(),
                None => break,
            }
        }
    }

    /// Bytes of text held for APQ.
    pub fn apq_bytes(&self) -> usize {
        self.apq.as_ref().map_or(0, |s| lock(s).bytes)
    }
}

fn lock(m: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    // Poisoned only by a panic mid-insert; the store has no invariant to break.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_registered() -> Refusal {
    (
        "this server runs only registered documents (SALESOPS_PERSISTED_DOCUMENTS) and this \
         document is not one of them"
            .to_owned(),
        NOT_ALLOWED,
    )
}

/// `{"version": 1, "sha256Hash": "<64 hex>"}` -> the hash, lower case.
fn parse_extension(ext: &async_graphql::Value) -> Result<String, Refusal> {
    let bad = |m: &str| (format!("extensions.persistedQuery{m}"), "BAD_USER_INPUT");
    let async_graphql::Value::Object(obj) = ext else {
        return Err(bad(": must be an object with version and sha256Hash"));
    };
    match obj.get("version") {
        Some(async_graphql::Value::Number(n)) if n.as_i64() == Some(1) => {}
        _ => return Err(bad(".version: only version 1 is supported")),
    }
    match obj.get("sha256Hash") {
        Some(async_graphql::Value::String(h))
            if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(h.to_ascii_lowercase())
        }
        _ => Err(bad(
            ".sha256Hash: must be 64 hex digits (the SHA-256 of the query)",
        )),
    }
}

/// Reads the allow-list: a `.graphql`/`.gql` file (one document), a
/// directory of them, or an Apollo persisted-query manifest (`.json`:
/// `{"operations": [{"id": ..., "body": ...}]}`). Each document is
/// registered under the SHA-256 of its exact text (and of its text without
/// trailing white space, as editors add a final newline).
pub fn load_allow_list(path: &str) -> Result<HashMap<String, String>, String> {
    let p = Path::new(path);
    let mut out = HashMap::new();
    let mut add = |text: String| {
        let trimmed = text.trim_end().to_owned();
        out.insert(sha256_hex(&trimmed), trimmed);
        out.insert(sha256_hex(&text), text);
    };
    let meta = std::fs::metadata(p)
        .map_err(|e| format!("SALESOPS_PERSISTED_DOCUMENTS: cannot read {path}: {e}"))?;
    if meta.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(p)
            .map_err(|e| format!("SALESOPS_PERSISTED_DOCUMENTS: cannot list {path}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "graphql" || x == "gql"))
            .collect();
        files.sort();
        for f in files {
            add(read(&f)?);
        }
    } else if p.extension().is_some_and(|x| x == "json") {
        let json: serde_json::Value = serde_json::from_str(&read(p)?)
            .map_err(|e| format!("SALESOPS_PERSISTED_DOCUMENTS: {path} is not JSON: {e}"))?;
        let ops = json
            .get("operations")
            .and_then(|o| o.as_array())
            .ok_or_else(|| {
                format!("SALESOPS_PERSISTED_DOCUMENTS: {path} has no `operations` list")
            })?;
        for op in ops {
            let body = op.get("body").and_then(|b| b.as_str()).ok_or_else(|| {
                format!("SALESOPS_PERSISTED_DOCUMENTS: an operation in {path} has no `body`")
            })?;
            add(body.to_owned());
        }
    } else {
        add(read(p)?);
    }
    // Each document must parse, so a typo fails at start, not per request.
    for text in out.values() {
        async_graphql::parser::parse_query(text).map_err(|e| {
            format!("SALESOPS_PERSISTED_DOCUMENTS: a document in {path} does not parse: {e}")
        })?;
    }
    if out.is_empty() {
        return Err(format!(
            "SALESOPS_PERSISTED_DOCUMENTS: {path} holds no document (.graphql, .gql or a .json manifest)"
        ));
    }
    Ok(out)
}

fn read(f: &Path) -> Result<String, String> {
    std::fs::read_to_string(f).map_err(|e| {
        format!(
            "SALESOPS_PERSISTED_DOCUMENTS: cannot read {}: {e}",
            f.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_hash(query: &str, hash: &str) -> Request {
        let mut r = Request::new(query);
        r.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(
                serde_json::json!({ "version": 1, "sha256Hash": hash }),
            )
            .unwrap(),
        );
        r
    }

    #[test]
    fn the_hash_of_a_known_text() {
        // printf '%s' '{ me { role } }' | sha256sum
        assert_eq!(
            sha256_hex("{ me { role } }"),
            "27c64fc4dd1f1764d7f0412707ec0210beccc5cf7f9af30d35b97345353dc6f0"
        );
    }

    #[test]
    fn apq_stores_by_hash_and_evicts_by_bytes() {
        let p = Persisted::new(40, None);
        let a = "{ me { role subject } }"; // 23 bytes
        let b = "{ deals { totalCount } }"; // 24 bytes
        let ha = sha256_hex(a);
        let mut r = with_hash("", &ha);
        assert_eq!(p.resolve(&mut r).unwrap_err().1, NOT_FOUND);
        p.resolve(&mut with_hash(a, &ha)).unwrap();
        let mut r = with_hash("", &ha);
        p.resolve(&mut r).unwrap();
        assert_eq!(r.query, a);
        assert_eq!(p.apq_bytes(), 23);
        p.resolve(&mut with_hash(b, &sha256_hex(b))).unwrap();
        // 47 bytes > 40: the least recently used (a) is gone.
        assert_eq!(p.apq_bytes(), 24);
        assert_eq!(p.resolve(&mut with_hash("", &ha)).unwrap_err().1, NOT_FOUND);
    }

    #[test]
    fn a_wrong_hash_is_refused_and_not_stored() {
        let p = Persisted::default();
        let wrong = "0".repeat(64);
        let err = p
            .resolve(&mut with_hash("{ me { role } }", &wrong))
            .unwrap_err();
        assert_eq!(err.1, "BAD_USER_INPUT");
        assert!(err.0.contains("sha256Hash"));
        assert_eq!(p.apq_bytes(), 0);
    }

    #[test]
    fn allow_list_serves_only_registered_documents() {
        let doc = "query Me { me { role } }\n".to_owned();
        let mut allowed = HashMap::new();
        allowed.insert(sha256_hex(&doc), doc.clone());
        let p = Persisted::new(1 << 20, Some(allowed));
        p.resolve(&mut Request::new(doc.clone())).unwrap();
        let mut by_hash = with_hash("", &sha256_hex(&doc));
        p.resolve(&mut by_hash).unwrap();
        assert_eq!(by_hash.query, doc);
        let other = "{ deals { totalCount } }";
        assert_eq!(
            p.resolve(&mut Request::new(other)).unwrap_err().1,
            NOT_ALLOWED
        );
        // Registering through APQ is not possible in allow-list mode.
        assert_eq!(
            p.resolve(&mut with_hash(other, &sha256_hex(other)))
                .unwrap_err()
                .1,
            NOT_ALLOWED
        );
        assert_eq!(p.apq_bytes(), 0);
    }
}
