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
//!
//! A type may also name its [`ReadyFields`]: argument-less fields whose
//! value needs no I/O (scalars read from the row it holds), and object
//! fields whose object is at hand (a rep's row already read, a stage the
//! request holds). Those are answered in place, without a future; an object
//! whose whole selection is ready (a stage's `{ id name }`, an attainment
//! row's `{ rep { id name } quota closedWon }`) resolves without one, and a
//! list of them in a plain loop. The futures were most of the cost: a
//! type's generated resolver future is as large as its largest field's, and
//! joining them moved kilobytes per field.
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{
    enum_value, resolve_container as resolve_standard, ContainerType, EnumType,
};
use async_graphql::{
    Context, ContextSelectionSet, OutputType, Positioned, ScalarType, ServerResult, Value,
};
use futures::future::join_all;
use rust_decimal::Decimal;

/// Items per chunk of a list: `join_all` keeps up to 30 futures in one
/// boxed slice (past that it switches to a task per future).
const CHUNK: usize = 30;

type BoxedValue<'a> = Pin<Box<dyn Future<Output = ServerResult<Value>> + Send + 'a>>;

/// Fields of a type answered without their resolvers: see the module
/// docs. Each gives exactly what the resolver gives (scalars through the
/// same `to_value`, objects through [`ready_node`]); tests/api/eager.rs
/// compares every ready scalar field, and the object fields on the pages
/// that use them, both ways.
pub trait ReadyFields {
    /// The value of the argument-less field named `field` (its GraphQL
    /// name), when it is ready; `None` resolves it through the resolver.
    fn ready_field(&self, _field: &str) -> Option<Value> {
        None
    }

    /// The value of the argument-less object field `field` (`ctx` is the
    /// field's context), when its object is at hand and everything its
    /// selection asks of it is ready ([`ready_node`]); `None` resolves it
    /// through the resolver.
    fn ready_object(&self, _ctx: &Context<'_>, _field: &str) -> Option<Value> {
        None
    }
}

/// A borrowed row answers what the row answers (lists of rows borrowed
/// from a report, `RefCast` wrappers of a row borrowed from another).
impl<T: ReadyFields + ?Sized> ReadyFields for &T {
    fn ready_field(&self, field: &str) -> Option<Value> {
        (**self).ready_field(field)
    }
    fn ready_object(&self, ctx: &Context<'_>, field: &str) -> Option<Value> {
        (**self).ready_object(ctx, field)
    }
}

/// `node` under the selection of the field `ctx`, when all of it is ready.
pub fn ready_node<T: ContainerType + ReadyFields>(ctx: &Context<'_>, node: &T) -> Option<Value> {
    resolve_ready(&ctx.with_selection_set(&ctx.item.node.selection_set), node)
}

/// A list field's items under the selection of the field `ctx`, when every
/// item of it is ready (at worst the ready prefix is resolved twice: the
/// field then goes through its resolver).
pub fn ready_list<T: ContainerType + ReadyFields>(
    ctx: &Context<'_>,
    items: impl IntoIterator<Item = T>,
) -> Option<Value> {
    let set = ctx.with_selection_set(&ctx.item.node.selection_set);
    items
        .into_iter()
        .map(|item| resolve_ready(&set, &item))
        .collect::<Option<Vec<_>>>()
        .map(Value::List)
}

/// A scalar's value, as its resolver gives it.
pub fn ready<S: ScalarType>(value: &S) -> Value {
    value.to_value()
}

/// An optional scalar's value (null when absent).
pub fn ready_opt<S: ScalarType>(value: Option<&S>) -> Value {
    value.map_or(Value::Null, ScalarType::to_value)
}

/// A Decimal's value, exactly as its resolver gives it (rust_decimal's
/// `to_string`), written with the standard integer formatting: rust_decimal
/// divides its 96-bit mantissa by ten per digit, 6% of the server's CPU on
/// 2,000 attainment rows of money.
pub fn ready_decimal(value: &Decimal) -> Value {
    let mantissa = value.mantissa();
    if mantissa == 0 {
        // "0", "0.00" or "-0.00" as rust_decimal spells them.
        return value.to_value();
    }
    let scale = value.scale() as usize;
    let mut text = mantissa.unsigned_abs().to_string();
    if text.len() <= scale {
        // At least one digit before the point: 5 at scale 2 is "0.05".
        text.insert_str(0, &"0".repeat(scale + 1 - text.len()));
    }
    if scale > 0 {
        text.insert(text.len() - scale, '.');
    }
    if mantissa < 0 {
        text.insert(0, '-');
    }
    Value::String(text)
}

/// An optional Decimal's value (null when absent).
pub fn ready_opt_decimal(value: Option<&Decimal>) -> Value {
    value.map_or(Value::Null, ready_decimal)
}

/// A text field's value (what a `&str` resolver gives).
pub fn ready_str(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// An optional text field's value.
pub fn ready_opt_str(value: Option<&str>) -> Value {
    value.map_or(Value::Null, ready_str)
}

/// An id's value (what an `ID` resolver gives).
pub fn ready_id(id: i64) -> Value {
    Value::String(id.to_string())
}

/// An enum's value.
pub fn ready_enum<E: EnumType>(value: E) -> Value {
    enum_value(value)
}

/// An optional enum's value.
pub fn ready_opt_enum<E: EnumType>(value: Option<E>) -> Value {
    value.map_or(Value::Null, enum_value)
}

/// An object resolved eagerly; the GraphQL type of `T`.
pub struct Eager<T>(pub T);

/// A list of objects resolved eagerly; the GraphQL type of `[T!]!`.
pub struct EagerList<T>(pub Vec<T>);

impl<T> From<Vec<T>> for EagerList<T> {
    fn from(v: Vec<T>) -> Self {
        Self(v)
    }
}

impl<T: ContainerType + ReadyFields> OutputType for Eager<T> {
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

impl<T: ContainerType + ReadyFields> OutputType for EagerList<T> {
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

/// A field's value when it is ready (see [`ReadyFields`]).
fn ready_value<T: ContainerType + ReadyFields>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
    field: &Positioned<Field>,
) -> Option<Value> {
    let name = field.node.name.node.as_str();
    if name == "__typename" {
        return Some(Value::String(root.introspection_type_name().into_owned()));
    }
    if !field.node.arguments.is_empty() {
        return None;
    }
    root.ready_field(name)
        .or_else(|| root.ready_object(&ctx.with_field(field), name))
}

/// The fields of a plain selection, in order.
fn plain_fields<'a>(
    ctx: &ContextSelectionSet<'a>,
) -> impl Iterator<Item = &'a Positioned<Field>> + 'a {
    ctx.item.node.items.iter().map(|s| match &s.node {
        Selection::Field(field) => field,
        _ => unreachable!("is_plain admits fields only"),
    })
}

/// One object, when its selection is plain and every field of it ready.
fn resolve_ready<T: ContainerType + ReadyFields>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
) -> Option<Value> {
    if !is_plain(ctx) {
        return None;
    }
    let mut map = IndexMap::with_capacity(ctx.item.node.items.len());
    for field in plain_fields(ctx) {
        let value = ready_value(ctx, root, field)?;
        map.insert(field.node.response_key().node.clone(), value);
    }
    Some(if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    })
}

/// One object: its ready fields answered in place, the others joined in
/// selection order. A field's error is recorded and the field left out, as
/// async-graphql does.
pub async fn resolve_object<T: ContainerType + ReadyFields>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
) -> ServerResult<Value> {
    if !is_plain(ctx) {
        return resolve_standard(ctx, root).await;
    }
    // Each field's value when ready; the others are awaited below.
    let values: Vec<Option<Value>> = plain_fields(ctx)
        .map(|field| ready_value(ctx, root, field))
        .collect();
    let pending = plain_fields(ctx)
        .zip(&values)
        .filter(|(_, ready)| ready.is_none())
        .map(|(field, _)| {
            let ctx = ctx.clone();
            async move {
                let ctx_field = ctx.with_field(field);
                Ok::<_, async_graphql::ServerError>(
                    root.resolve_field(&ctx_field).await?.unwrap_or_default(),
                )
            }
        });
    let mut awaited = join_all(pending).await.into_iter();
    let mut map = IndexMap::with_capacity(values.len());
    for (field, ready) in plain_fields(ctx).zip(values) {
        let value = match ready {
            Some(v) => v,
            None => match awaited.next().expect("one answer per pending field") {
                Ok(v) => v,
                Err(e) => {
                    ctx.add_error(e);
                    continue;
                }
            },
        };
        map.insert(field.node.response_key().node.clone(), value);
    }
    Ok(if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    })
}

/// A list. Items whose selection is all ready are answered in a loop, in
/// order, until one is not (its type's readiness rarely varies by row: one
/// object of wasted work at most); the rest are resolved concurrently (so
/// the DataLoaders batch across items), in chunks of [`CHUNK`]. The first
/// failing item (in list order) fails the list, with its path.
async fn resolve_items<T: ContainerType + ReadyFields>(
    ctx: &ContextSelectionSet<'_>,
    items: &[T],
) -> ServerResult<Value> {
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        match resolve_ready(ctx, item) {
            Some(v) => values.push(v),
            None => break,
        }
    }
    let done = values.len();
    let chunks = items[done..].chunks(CHUNK).enumerate().map(|(c, chunk)| {
        let ctx = ctx.clone();
        async move {
            let per_item = chunk.iter().enumerate().map(|(i, item)| {
                let ctx = ctx.clone();
                async move {
                    let ctx_idx = ctx.with_index(done + c * CHUNK + i);
                    resolve_object(&ctx_idx, item)
                        .await
                        .map_err(|e| ctx_idx.set_error_path(e))
                }
            });
            join_all(per_item).await
        }
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_read_as_their_resolver_writes_them() {
        let mut cases = vec![
            Decimal::ZERO,
            Decimal::new(0, 2),
            -Decimal::new(0, 2),
            Decimal::new(5, 2),
            Decimal::new(-5, 2),
            Decimal::new(100, 2),
            Decimal::new(69_000_000, 2),
            Decimal::new(123, 0),
            Decimal::new(-123, 0),
            Decimal::new(1, 28),
            Decimal::MAX,
            Decimal::MIN,
        ];
        // Mantissas of every size at every scale (a fixed LCG).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..5_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let bits = (x >> 58) as u32; // 0..63
            let m = (x >> 6) as i64 >> (63 - bits.max(1));
            let scale = (x % 29) as u32;
            cases.push(Decimal::new(m, scale));
            cases.push(Decimal::from_i128_with_scale(
                i128::from(m) * 1_000_003,
                scale,
            ));
        }
        for d in cases {
            assert_eq!(ready_decimal(&d), d.to_value(), "{d:?}");
        }
    }
}
