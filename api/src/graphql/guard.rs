//! Checks on a request's text that must run before the parser sees it.
//!
//! async-graphql's parser is recursive and limits only the nesting of
//! selection sets: a value literal nested ~1,700 levels deep
//! (`{ me(x: [[[[...1...]]]]) { role } }`, 3.5 KB) overflowed a worker
//! thread's stack and aborted the whole process. A linear scan of the
//! brackets, aware of strings and comments, refuses such a text first.

/// Deepest bracket nesting (`{`, `[`, `(` together) a document may have. The
/// deepest legitimate documents are standard introspection queries (about 20
/// levels with their `ofType` chains); 64 leaves room for any real client
/// and is far below what overflows the parser (measured: ~1,700 levels on a
/// 2 MB worker stack).
pub const MAX_NESTING: usize = 64;

/// `Err` with a message when the text nests brackets deeper than `max`.
pub fn check_nesting(text: &str, max: usize) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                // A comment runs to the end of the line.
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                if bytes[i..].starts_with(b"\"\"\"") {
                    // Block string: ends at the next unescaped `"""`.
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        if bytes[i..].starts_with(b"\\\"\"\"") {
                            i += 4;
                        } else {
                            i += 1;
                        }
                    }
                    i += 2;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > max {
                    return Err(format!(
                        "the document nests brackets more than {max} levels deep"
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_pass() {
        assert!(check_nesting("{ me { role } }", MAX_NESTING).is_ok());
        assert!(check_nesting("query($f: [[Int!]]) { a(x: {y: [1, {z: 2}]}) { b } }", 8).is_ok());
    }

    #[test]
    fn deep_values_fail() {
        let deep = format!(
            "{{ me(x: {}1{}) {{ role }} }}",
            "[".repeat(2000),
            "]".repeat(2000)
        );
        assert!(check_nesting(&deep, MAX_NESTING).is_err());
        let objects = format!("{{ me(x: {}) {{ role }} }}", "{a: ".repeat(100));
        assert!(check_nesting(&objects, MAX_NESTING).is_err());
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let text = format!(
            "{{ me(x: \"{}\", y: \"\"\"{}\"\"\") {{ role }} # {}\n}}",
            "[".repeat(500),
            "{\\\"\"\"".repeat(100),
            "(".repeat(500)
        );
        assert!(check_nesting(&text, 8).is_ok(), "{text}");
    }

    #[test]
    fn the_limit_is_exact() {
        assert!(check_nesting("[[[]]]", 3).is_ok());
        assert!(check_nesting("[[[[]]]]", 3).is_err());
    }
}
