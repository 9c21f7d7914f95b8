//! AppError at the GraphQL edge: its code in `extensions.code`, and codes
//! for the errors async-graphql raises itself. The only place codes are
//! assigned.
use async_graphql::{ErrorExtensions, Value};

use crate::error::{truncate, AppError, MAX_MESSAGE_CHARS};

/// `.extend()` on an AppError: the GraphQL error with its code.
pub trait Extend {
    fn extend(&self) -> async_graphql::Error;
}

impl Extend for AppError {
    fn extend(&self) -> async_graphql::Error {
        if let Self::Internal(e) = self {
            tracing::error!(error = %e, "internal error");
        }
        let code = self.code();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| ext.set("code", code))
    }
}

/// `.extend()` on a result of the services.
pub trait ResultExt<T> {
    fn extend(self) -> async_graphql::Result<T>;
}

impl<T> ResultExt<T> for Result<T, AppError> {
    fn extend(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}

/// Gives every error in a response an `extensions.code`: errors raised by
/// async-graphql itself (parse, validation, limits, argument coercion) carry
/// none, so they are classified here. Every message is cut to
/// `MAX_MESSAGE_CHARS`.
pub fn assign_codes(errors: &mut [async_graphql::ServerError]) {
    for err in errors {
        if err.message.chars().count() > MAX_MESSAGE_CHARS {
            err.message = truncate(&err.message, MAX_MESSAGE_CHARS);
        }
        let has_code = err
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .is_some();
        if has_code {
            continue;
        }
        // async-graphql's own limits (a backstop: http.rs checks depth and
        // cost first) name no setting; say which one raises them.
        match err.message.as_str() {
            "Query is nested too deep." => {
                err.message = "the query nests fields deeper than the limit \
                               (SALESOPS_MAX_QUERY_DEPTH); select fewer nested levels"
                    .to_owned();
            }
            "Query is too complex." => {
                err.message = "the query is too complex for the limit \
                               (SALESOPS_MAX_QUERY_COMPLEXITY)"
                    .to_owned();
            }
            _ => {}
        }
        let msg = err.message.as_str();
        let code = if msg.contains("nested too deep")
            || msg.contains("too complex")
            || msg.contains("nests fields deeper")
        {
            "QUERY_TOO_COMPLEX"
        } else if err.path.is_empty()
            || msg.starts_with("Failed to parse")
            || msg.starts_with("Invalid value")
            // Argument coercion of a variable of the wrong type (a Period
            // given as a number): the client's input, not a fault.
            || msg.starts_with("Expected input type")
            || msg.starts_with("Internal error occurred while parsing")
        {
            "BAD_USER_INPUT"
        } else {
            tracing::error!(message = %msg, "uncoded resolver error");
            "INTERNAL"
        };
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", Value::from(code));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn async_graphql_limits_name_their_setting() {
        let mut errs = vec![
            async_graphql::ServerError::new("Query is nested too deep.", None),
            async_graphql::ServerError::new("Query is too complex.", None),
        ];
        assign_codes(&mut errs);
        assert_eq!(
            errs[0].message,
            "the query nests fields deeper than the limit (SALESOPS_MAX_QUERY_DEPTH); \
             select fewer nested levels"
        );
        assert_eq!(
            errs[1].message,
            "the query is too complex for the limit (SALESOPS_MAX_QUERY_COMPLEXITY)"
        );
        for e in &errs {
            assert_eq!(
                e.extensions.as_ref().unwrap().get("code"),
                Some(&Value::from("QUERY_TOO_COMPLEX"))
            );
        }
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(500_000);
        let mut errs = vec![async_graphql::ServerError::new(
            format!("Failed to parse \"Period\": {long}"),
            None,
        )];
        assign_codes(&mut errs);
        assert_eq!(errs[0].message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            errs[0].extensions.as_ref().unwrap().get("code"),
            Some(&Value::from("BAD_USER_INPUT"))
        );
    }
}
