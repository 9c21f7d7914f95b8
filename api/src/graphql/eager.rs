//! Resolving large answers with less work per field.
//!
//! async-graphql resolves every object by boxing one future per selected
//! field and driving them through a `FuturesUnordered` (a reference-counted
//! task per field), and every list through `try_join_all` (a task per item
//! past 30). For a page of 2,204 attainment rows that is most of the
//! server's time: the rows' values are ready, the machinery is not free.
//!
//! [`Eager`] and [`EagerList`] are the same GraphQL types as what they wrap
//! (same name, same schema entry) and resolve the same fields through the
//! same generated resolvers, but join a plain selection's fields in one
//! allocation and in selection order (`join_all`), and a list's items in
//! chunks of 30 (one allocation per chunk). Anything but a plain selection
//! (fragments, directives, a response key given twice) goes
//! through async-graphql's own path, so answers and errors are unchanged;
//! tests/api/eager.rs compares both paths on the same documents.
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{resolve_container as resolve_standard, ContainerType};
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};
use futures::future::join_all;

/// Items per chunk of a list: `join_all` keeps up to 30 futures in one
/// boxed slice (past that it switches to a task per future).
const CHUNK: usize = 30;

type BoxedValue<'a> = Pin<Box<dyn Future<Output = ServerResult<Value>> + Send + 'a>>;

/// An object resolved eagerly; the GraphQL type of `T`.
pub struct Eager<T>(pub T);

/// A list of objects resolved eagerly; the GraphQL type of `[T!]!`.
pub struct EagerList<T>(pub Vec<T>);

impl<T> From<Vec<T>> for EagerList<T> {
    fn from(v: Vec<T>) -> Self {
        Self(v)
    }
}

impl<T: ContainerType> OutputType for Eager<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }
    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }
    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }
    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }
    // Boxed: a type that holds itself (Territory.children) would otherwise
    // give its resolver an infinitely nested future type.
    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let boxed: BoxedValue<'_> = Box::pin(resolve_object(ctx, &self.0));
        boxed.await
    }
}

impl<T: ContainerType> OutputType for EagerList<T> {
    fn type_name() -> Cow<'static, str> {
        Vec::<T>::type_name()
    }
    fn qualified_type_name() -> String {
        Vec::<T>::qualified_type_name()
    }
    fn create_type_info(registry: &mut Registry) -> String {
        Vec::<T>::create_type_info(registry)
    }
    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let boxed: BoxedValue<'_> = Box::pin(resolve_items(ctx, &self.0));
        boxed.await
    }
}

/// Whether a selection set is only fields, each without directives and
/// under its own response key: then joining the fields in order gives what
/// async-graphql's path gives. (That path also calls schema extensions'
/// per-field hooks; the schema registers none, see `schema_builder`.)
fn is_plain(ctx: &ContextSelectionSet<'_>) -> bool {
    let items = &ctx.item.node.items;
    items.iter().enumerate().all(|(i, s)| match &s.node {
        Selection::Field(f) => {
            let key = &f.node.response_key().node;
            f.node.directives.is_empty()
                && items[..i].iter().all(|p| match &p.node {
                    Selection::Field(p) => p.node.response_key().node != *key,
                    _ => false,
                })
        }
        _ => false,
    })
}

/// One object: its fields joined in selection order. A field's error is
/// recorded and the field left out, as async-graphql does.
pub async fn resolve_object<T: ContainerType>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
) -> ServerResult<Value> {
    if !is_plain(ctx) {
        return resolve_standard(ctx, root).await;
    }
    let fields = ctx.item.node.items.iter().map(|s| {
        let ctx = ctx.clone();
        async move {
            let Selection::Field(field) = &s.node else {
                unreachable!("is_plain admits fields only")
            };
            let key = field.node.response_key().node.clone();
            if field.node.name.node == "__typename" {
                return Ok((
                    key,
                    Value::String(root.introspection_type_name().into_owned()),
                ));
            }
            let ctx_field = ctx.with_field(field);
            let value = root.resolve_field(&ctx_field).await?.unwrap_or_default();
            Ok::<_, async_graphql::ServerError>((key, value))
        }
    });
    let results = join_all(fields).await;
    let mut map = IndexMap::with_capacity(results.len());
    for r in results {
        match r {
            Ok((key, value)) => {
                map.insert(key, value);
            }
            Err(e) => ctx.add_error(e),
        }
    }
    Ok(if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    })
}

/// A list: every item resolved concurrently (so the DataLoaders batch across
/// items), in chunks of [`CHUNK`]; the first failing item (in list order)
/// fails the list, with its path.
async fn resolve_items<T: ContainerType>(
    ctx: &ContextSelectionSet<'_>,
    items: &[T],
) -> ServerResult<Value> {
    let chunks = items.chunks(CHUNK).enumerate().map(|(c, chunk)| {
        let ctx = ctx.clone();
        async move {
            let per_item = chunk.iter().enumerate().map(|(i, item)| {
                let ctx = ctx.clone();
                async move {
                    let ctx_idx = ctx.with_index(c * CHUNK + i);
                    resolve_object(&ctx_idx, item)
                        .await
                        .map_err(|e| ctx_idx.set_error_path(e))
                }
            });
            join_all(per_item).await
        }
    });
    let mut values = Vec::with_capacity(items.len());
    for chunk in join_all(chunks).await {
        for v in chunk {
            values.push(v?);
        }
    }
    Ok(Value::List(values))
}

impl<T> FromIterator<T> for EagerList<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}
