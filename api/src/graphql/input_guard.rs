//! Input that both databases store alike, checked once per request before
//! validation: no string anywhere (variables, literal arguments, variable
//! defaults, directive arguments) may hold a NUL character. PostgreSQL
//! cannot store U+0000 in text (it answered INTERNAL) while SQLite stored
//! it, so the two disagreed; now both answer BAD_USER_INPUT and change
//! nothing.
//!
//! One exception keeps bulk calls per item: the `inputs` of
//! `bulkUpsertDeals` (and the variables passed there) are skipped here and
//! checked per input by `DealInput::to_new_deal`, so one bad input is
//! reported in `errors` and the others are still applied.
//!
//! The walks are iterative: values nest as deep as the parser allows.
use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};
use async_graphql_value::{ConstValue, Value};

/// (field, argument) pairs whose strings are checked per item elsewhere.
const PER_ITEM: &[(&str, &str)] = &[("bulkUpsertDeals", "inputs")];

pub const NUL_MESSAGE: &str = "strings must not contain the NUL character (U+0000)";

/// True when a string holds a NUL character.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// Refuses a parsed document whose literals, or whose variables (but those
/// of per-item inputs), hold a NUL character. Run by `http::prepare` on
/// every operation (HTTP, WebSocket, exports) before it executes; not a
/// schema extension, since any extension puts every field of every answer
/// through async-graphql's extension chain (a type lookup and a boxed
/// future per field).
pub fn check(doc: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    let exempt = check_document(doc)?;
    for (name, value) in variables.iter() {
        if !exempt.contains(name.as_str()) && const_has_nul(value) {
            return Err(nul_error());
        }
    }
    Ok(())
}

fn nul_error() -> ServerError {
    let mut err = ServerError::new(NUL_MESSAGE, None);
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", "BAD_USER_INPUT");
    err
}

/// Checks every literal of the document; returns the variables used only
/// as per-item arguments.
fn check_document(doc: &ExecutableDocument) -> ServerResult<HashSet<String>> {
    let mut sets: Vec<&SelectionSet> = Vec::new();
    let mut values: Vec<&Value> = Vec::new();
    let mut consts: Vec<&ConstValue> = Vec::new();
    let mut exempt = HashSet::new();
    let mut used_elsewhere = HashSet::new();
    for (_, op) in doc.operations.iter() {
        sets.push(&op.node.selection_set.node);
        for var in &op.node.variable_definitions {
            if let Some(d) = &var.node.default_value {
                consts.push(&d.node);
            }
            for dir in &var.node.directives {
                values.extend(dir.node.arguments.iter().map(|(_, v)| &v.node));
            }
        }
        for dir in &op.node.directives {
            values.extend(dir.node.arguments.iter().map(|(_, v)| &v.node));
        }
    }
    for frag in doc.fragments.values() {
        sets.push(&frag.node.selection_set.node);
        for dir in &frag.node.directives {
            values.extend(dir.node.arguments.iter().map(|(_, v)| &v.node));
        }
    }
    while let Some(set) = sets.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let field = f.node.name.node.as_str();
                    for (name, value) in &f.node.arguments {
                        let per_item = PER_ITEM
                            .iter()
                            .any(|(fl, a)| *fl == field && *a == name.node.as_str());
                        if per_item {
                            // Literal items are checked per item too; a
                            // variable here is skipped below.
                            collect_variables(&value.node, &mut exempt);
                        } else {
                            values.push(&value.node);
                        }
                    }
                    for dir in &f.node.directives {
                        values.extend(dir.node.arguments.iter().map(|(_, v)| &v.node));
                    }
                    sets.push(&f.node.selection_set.node);
                }
                Selection::InlineFragment(i) => {
                    for dir in &i.node.directives {
                        values.extend(dir.node.arguments.iter().map(|(_, v)| &v.node));
                    }
                    sets.push(&i.node.selection_set.node);
                }
                Selection::FragmentSpread(s) => {
                    for dir in &s.node.directives {
                        values.extend(dir.node.arguments.iter().map(|(_, v)| &v.node));
                    }
                }
            }
        }
    }
    while let Some(v) = values.pop() {
        match v {
            Value::String(s) if has_nul(s) => return Err(nul_error()),
            Value::Variable(name) => {
                used_elsewhere.insert(name.to_string());
            }
            Value::List(items) => values.extend(items.iter()),
            Value::Object(fields) => {
                if fields.keys().any(|k| has_nul(k)) {
                    return Err(nul_error());
                }
                values.extend(fields.values());
            }
            _ => {}
        }
    }
    if consts.into_iter().any(const_has_nul) {
        return Err(nul_error());
    }
    // A variable also used outside a per-item argument is checked whole.
    Ok(exempt.difference(&used_elsewhere).cloned().collect())
}

fn collect_variables(v: &Value, out: &mut HashSet<String>) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Variable(name) => {
                out.insert(name.to_string());
            }
            Value::List(items) => stack.extend(items.iter()),
            Value::Object(fields) => stack.extend(fields.values()),
            _ => {}
        }
    }
}

fn const_has_nul(v: &ConstValue) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            ConstValue::String(s) if has_nul(s) => return true,
            ConstValue::List(items) => stack.extend(items.iter()),
            ConstValue::Object(fields) => {
                if fields.keys().any(|k| has_nul(k)) {
                    return true;
                }
                stack.extend(fields.values());
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn check(q: &str) -> Result<HashSet<String>, String> {
        check_document(&parse_query(q).unwrap()).map_err(|e| e.message)
    }

    #[test]
    fn literals_with_nul_are_refused_anywhere() {
        for q in [
            r#"{ deals(filter: { search: "a\u0000b" }) { totalCount } }"#,
            r#"query($x: String = "\u0000") { me { role } }"#,
            r#"{ ...F } fragment F on Query { accounts(search: "\u0000") { id } }"#,
            r#"{ me @include(if: true) { rep { name } } a: deals(filter: { status: [OPEN], search: "x\u0000" }) { totalCount } }"#,
        ] {
            assert_eq!(check(q), Err(NUL_MESSAGE.to_owned()), "{q}");
        }
        assert_eq!(
            check(r#"{ deals(filter: { search: "ab" }) { totalCount } }"#),
            Ok(HashSet::new())
        );
    }

    #[test]
    fn bulk_inputs_are_left_to_the_per_item_check() {
        let q = r#"mutation($i: [DealInput!]!) { bulkUpsertDeals(inputs: $i) { created } }"#;
        assert_eq!(check(q), Ok(HashSet::from(["i".to_owned()])));
        let q = r#"mutation($i: [DealInput!]!, $j: DealInput!) { bulkUpsertDeals(inputs: $i) { created } createDeal(input: $j) { id } }"#;
        assert_eq!(check(q), Ok(HashSet::from(["i".to_owned()])));
        let q = r#"mutation { bulkUpsertDeals(inputs: [{ name: "a\u0000" }]) { created } }"#;
        assert_eq!(check(q), Ok(HashSet::new()));
    }
}
