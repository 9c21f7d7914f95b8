//! The cost of a document, computed before async-graphql validates it.
//!
//! Why our own: async-graphql's complexity walks fragment spreads inline, so a
//! 957-byte document of 23 fragments each spreading the previous one twice
//! cost 3.3 s of CPU before it was refused, doubling per level; and it does
//! not multiply lists without a page argument. Here each fragment's cost is
//! computed once (memoised), every list multiplies the cost of its items
//! (by `first`, by the largest page for a paged list without `first`, or by
//! an assumed size for lists without paging), metric and forecast fields
//! weigh as much as a large page, and introspection weighs a fixed amount
//! (its answer is bounded by the schema). Arithmetic saturates, so no
//! document can overflow it. The cost also bounds how much async-graphql's
//! own validation then has to walk.
use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationDefinition, Selection, SelectionSet, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::{Name, Variables};
use async_graphql_value::Value;

/// Root fields whose answer aggregates many rows (metrics, forecasts,
/// S&OP reports) and nested fields that compute a metric per parent.
pub const HEAVY_FIELDS: &[(&str, &str)] = &[
    ("Query", "winRates"),
    ("Query", "quotaAttainment"),
    ("Query", "pipelineSummary"),
    ("Query", "funnel"),
    ("Query", "repPerformance"),
    ("Query", "commissions"),
    ("Query", "metricSeries"),
    ("Query", "dataHealth"),
    ("Query", "forecast"),
    ("Query", "forecastAccuracy"),
    ("Query", "forecastSubmissions"),
    ("Query", "forecastTrend"),
    ("Query", "pipelineChanges"),
    ("PipelineChanges", "deals"),
    ("Deal", "risk"),
    ("Query", "forecastCalls"),
    ("Rep", "teamQuota"),
    ("Playbook", "effectiveness"),
];

/// What one heavy field costs: as much as a full page of 500 rows of ten
/// fields, so the default limit (50,000) admits nine of them in one
/// document (a VP dashboard asks four to six). A heavy field nested under a
/// list (a playbook's effectiveness) is computed for every parent in one
/// batched statement, so it is charged once per document, not per parent.
pub const HEAVY_COST: u64 = 5_000;
/// What `__schema` costs. A full introspection of our schema answers 164 KB
/// (measured with the graphql-js 16 and graphql-core 3.2 documents, all
/// options on), and the server holds about 1.5 MB while building it (400
/// aliases took 600 MB). Priced so that one fits in the default limit
/// (50,000) and two do not: a request, batch included, holds at most one
/// full `__schema`, and 400 aliases of it are refused before anything runs.
pub const SCHEMA_COST: u64 = 30_000;
/// What `__type` costs: one type's answer, at most 17 KB (`Query`, the
/// largest type, measured), so a client may look up dozens at once.
pub const TYPE_COST: u64 = 1_000;
/// The assumed length of a list that takes no page argument (a rep's direct
/// reports, a territory's reps, a deal's stage history, a metric's rows):
/// the typical size, not a bound (in the demo organisation a deal has at
/// most 7 stage changes, a manager at most 9 direct reports, a funnel 7
/// steps). Such lists have no bound a client controls; the per-request row
/// budget stops the ones that run far past this at run time.
pub const ASSUMED_LIST_LEN: u64 = 10;

/// Lists of a tree that one request computes whole in memory (no statement
/// per level): the forecast call roll-up's children. Their nodes at every
/// level together are the reps in scope, each once, so each level is
/// charged as `TREE_BRANCHING` nodes, not `ASSUMED_LIST_LEN`: five levels
/// below the root cost 5^5 = 3,125 nodes per field, above the 2,204 reps of
/// the benchmark organisation (whose tree is four levels deep), where ten
/// per level charged 100,000 and refused the whole-organisation call page.
pub const TREE_LISTS: &[(&str, &str)] = &[("ForecastCallNode", "children")];
/// What one level of a `TREE_LISTS` list is charged.
pub const TREE_BRANCHING: u64 = 5;

#[derive(Debug, Clone)]
struct FieldShape {
    target: String,
    list: bool,
    paged: bool,
    heavy: bool,
}

/// Field shapes of the schema, read once from its SDL.
#[derive(Debug, Clone)]
pub struct CostModel {
    fields: HashMap<String, HashMap<String, FieldShape>>,
    query: String,
    mutation: String,
    page_cap: u64,
}

impl CostModel {
    /// `page_cap` is the largest page a list accepts (`SALESOPS_MAX_PAGE_SIZE`).
    pub fn from_sdl(sdl: &str, page_cap: usize) -> Self {
        let doc = async_graphql::parser::parse_schema(sdl).expect("our own SDL parses");
        let mut fields: HashMap<String, HashMap<String, FieldShape>> = HashMap::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            let type_name = t.node.name.node.to_string();
            let field_defs = match &t.node.kind {
                TypeKind::Object(o) => &o.fields,
                TypeKind::Interface(i) => &i.fields,
                _ => continue,
            };
            let map = fields.entry(type_name.clone()).or_default();
            for f in field_defs {
                let f = &f.node;
                let mut ty = &f.ty.node;
                let mut list = false;
                while let BaseType::List(inner) = &ty.base {
                    list = true;
                    ty = inner;
                }
                let BaseType::Named(target) = &ty.base else {
                    unreachable!("lists were unwrapped")
                };
                let name = f.name.node.to_string();
                let heavy = HEAVY_FIELDS
                    .iter()
                    .any(|(t, n)| *t == type_name && *n == name);
                map.insert(
                    name,
                    FieldShape {
                        target: target.to_string(),
                        list,
                        paged: f.arguments.iter().any(|a| a.node.name.node == "first"),
                        heavy,
                    },
                );
            }
        }
        Self {
            fields,
            query: "Query".into(),
            mutation: "Mutation".into(),
            page_cap: page_cap.max(1) as u64,
        }
    }

    /// The cost of the operation a request runs (the named one, or the only one).
    pub fn cost(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> u64 {
        let op = match operation_name {
            Some(name) => doc
                .operations
                .iter()
                .find(|(n, _)| n.map(|n| n.as_str()) == Some(name)),
            None => doc.operations.iter().next(),
        };
        let Some((_, op)) = op else { return 0 };
        let mut walk = Walk {
            model: self,
            doc,
            variables,
            memo: HashMap::new(),
            visiting: Vec::new(),
            charged: Default::default(),
            extra: 0,
        };
        let cost = walk.operation(&op.node);
        cost.saturating_add(walk.extra)
    }
}

struct Walk<'a> {
    model: &'a CostModel,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Cost of a fragment for a given page of its parent connection.
    memo: HashMap<(&'a str, Option<u64>), u64>,
    visiting: Vec<&'a str>,
    /// Nested heavy fields already charged (they run once per document).
    charged: std::collections::HashSet<(String, String)>,
    /// Their cost, added once to the operation's.
    extra: u64,
}

impl<'a> Walk<'a> {
    fn operation(&mut self, op: &'a OperationDefinition) -> u64 {
        use async_graphql::parser::types::OperationType;
        let root = match op.ty {
            OperationType::Mutation => self.model.mutation.clone(),
            _ => self.model.query.clone(),
        };
        self.selection_set(&root, &op.selection_set.node, None)
    }

    /// `page`: the page size of the connection this selection set belongs
    /// to, which its `edges` and `nodes` lists take.
    fn selection_set(&mut self, ty: &str, set: &'a SelectionSet, page: Option<u64>) -> u64 {
        let mut total: u64 = 0;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(f) => self.field(ty, &f.node, page),
                Selection::InlineFragment(frag) => {
                    let on = frag
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str())
                        .unwrap_or(ty);
                    self.selection_set(on, &frag.node.selection_set.node, page)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), page)
                }
            };
            total = total.saturating_add(cost);
        }
        total
    }

    fn fragment(&mut self, name: &'a str, page: Option<u64>) -> u64 {
        if let Some(cost) = self.memo.get(&(name, page)) {
            return *cost;
        }
        // A cycle is invalid; validation reports it. Count it as nothing so
        // the walk ends.
        if self.visiting.contains(&name) {
            return 0;
        }
        let Some((key, frag)) = self.doc.fragments.get_key_value(&Name::new(name)) else {
            return 0;
        };
        self.visiting.push(key.as_str());
        let on = frag.node.type_condition.node.on.node.as_str();
        let cost = self.selection_set(on, &frag.node.selection_set.node, page);
        self.visiting.pop();
        self.memo.insert((key.as_str(), page), cost);
        cost
    }

    fn field(
        &mut self,
        ty: &str,
        f: &'a async_graphql::parser::types::Field,
        page: Option<u64>,
    ) -> u64 {
        let name = f.name.node.as_str();
        match name {
            "__typename" => return 0,
            "__schema" => return SCHEMA_COST,
            "__type" => return TYPE_COST,
            _ => {}
        }
        let shape = self.model.fields.get(ty).and_then(|m| m.get(name)).cloned();
        let Some(shape) = shape else {
            // Unknown to the schema: validation refuses it; count its size.
            return 1u64.saturating_add(self.selection_set("", &f.selection_set.node, None));
        };
        let first = shape.paged.then(|| self.first_arg(f));
        let base = match (shape.heavy, ty == self.model.query) {
            (false, _) => 1,
            (true, true) => HEAVY_COST,
            // Batched across parents: charged once, outside any multiplier.
            (true, false) => {
                if self.charged.insert((ty.to_owned(), name.to_owned())) {
                    self.extra = self.extra.saturating_add(HEAVY_COST);
                }
                1
            }
        };
        let tree = TREE_LISTS.iter().any(|(t, n)| *t == ty && *n == name);
        let (times, child_page) = match (shape.list, first) {
            (true, Some(first)) => (first, None),
            (true, None) if tree => (TREE_BRANCHING, None),
            (true, None) => (page.unwrap_or(ASSUMED_LIST_LEN), None),
            // A connection: its edges and nodes take the page.
            (false, Some(first)) => (1, Some(first)),
            (false, None) => (1, None),
        };
        let children = self.selection_set(&shape.target, &f.selection_set.node, child_page);
        base.saturating_add(times.saturating_mul(children))
    }

    /// The page a `first` argument asks for, or the largest page when absent.
    fn first_arg(&self, f: &async_graphql::parser::types::Field) -> u64 {
        let value = f.get_argument("first").map(|v| &v.node);
        let n = match value {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::Variable(var)) => match self.variables.get(var) {
                Some(async_graphql::Value::Number(n)) => n.as_u64(),
                _ => None,
            },
            _ => None,
        };
        n.unwrap_or(self.model.page_cap)
            .clamp(1, self.model.page_cap)
    }
}

/// How deep the document nests fields, fragments inlined: the measure
/// async-graphql's depth limit uses (`{ me { role } }` is 2), computed here
/// before validation so the refusal can name the limit and its setting.
/// Each fragment's depth is computed once, so the walk is linear in the
/// document's size; a fragment cycle (invalid, refused by validation)
/// counts as nothing so the walk ends.
pub fn depth(doc: &ExecutableDocument) -> usize {
    fn set<'a>(
        doc: &'a ExecutableDocument,
        s: &'a SelectionSet,
        memo: &mut HashMap<&'a str, usize>,
        visiting: &mut Vec<&'a str>,
    ) -> usize {
        let mut deepest = 0;
        for item in &s.items {
            let d = match &item.node {
                Selection::Field(f) => 1 + set(doc, &f.node.selection_set.node, memo, visiting),
                Selection::InlineFragment(frag) => {
                    set(doc, &frag.node.selection_set.node, memo, visiting)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match memo.get(name) {
                        Some(d) => *d,
                        None if visiting.contains(&name) => 0,
                        None => match doc.fragments.get_key_value(&Name::new(name)) {
                            Some((key, frag)) => {
                                visiting.push(key.as_str());
                                let d = set(doc, &frag.node.selection_set.node, memo, visiting);
                                visiting.pop();
                                memo.insert(key.as_str(), d);
                                d
                            }
                            None => 0,
                        },
                    }
                }
            };
            deepest = deepest.max(d);
        }
        deepest
    }
    let mut memo = HashMap::new();
    let mut visiting = Vec::new();
    doc.operations
        .iter()
        .map(|(_, op)| set(doc, &op.node.selection_set.node, &mut memo, &mut visiting))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn model() -> CostModel {
        CostModel::from_sdl(&crate::graphql::sdl(), 500)
    }

    fn cost(q: &str) -> u64 {
        model().cost(&parse_query(q).unwrap(), None, &Variables::default())
    }

    #[test]
    fn scalars_cost_one_and_typename_nothing() {
        assert_eq!(cost("{ me { subject role __typename } }"), 3);
    }

    #[test]
    fn lists_multiply_by_their_page() {
        // deals(first: 10) { nodes { id name } } = connection 1 + 10 x (1 + 2)
        assert_eq!(
            cost("{ deals(first: 10) { nodes { id name } } }"),
            1 + 1 + 10 * 2
        );
        // Without `first` a paged list counts the largest page.
        assert_eq!(cost("{ reps { id } }"), 1 + 500);
    }

    #[test]
    fn unpaged_lists_multiply_by_the_assumed_length() {
        assert_eq!(
            cost("{ rep(id: 1) { directReports { directReports { id } } } }"),
            1 + 1 + ASSUMED_LIST_LEN * (1 + ASSUMED_LIST_LEN)
        );
    }

    #[test]
    fn call_tree_levels_multiply_by_the_branching() {
        assert_eq!(
            cost("{ forecastCalls(period: \"2026\") { rollup children { rollup children { rollup } } } }"),
            HEAVY_COST + 1 + 1 + TREE_BRANCHING * (1 + 1 + TREE_BRANCHING)
        );
    }

    #[test]
    fn variables_give_the_page() {
        let doc = parse_query("query($n: Int) { reps(first: $n) { id } }").unwrap();
        let vars = Variables::from_json(serde_json::json!({ "n": 7 }));
        assert_eq!(model().cost(&doc, None, &vars), 1 + 7);
    }

    #[test]
    fn heavy_fields_weigh_a_page() {
        assert_eq!(
            cost("{ a: funnel(period: \"2026-Q1\") { stage } b: funnel(period: \"2026-Q2\") { stage } }"),
            2 * (HEAVY_COST + ASSUMED_LIST_LEN)
        );
    }

    #[test]
    fn nested_heavy_fields_are_charged_once() {
        // 10 playbooks x (name + effectiveness + deals), plus one charge.
        assert_eq!(
            cost("query($p: Period!) { playbooks { name effectiveness(period: $p) { deals } } }"),
            1 + ASSUMED_LIST_LEN * 3 + HEAVY_COST
        );
    }

    #[test]
    fn fragment_doubling_is_computed_in_linear_time() {
        let mut q = String::from("query { ...F30 }\nfragment F0 on Query { me { role } }\n");
        for i in 1..=30 {
            q.push_str(&format!(
                "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
                p = i - 1
            ));
        }
        let started = std::time::Instant::now();
        assert_eq!(cost(&q), 2u64.pow(30) * 2);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn fragment_cycles_end() {
        let q =
            "query { ...A } fragment A on Query { ...B me { role } } fragment B on Query { ...A }";
        assert_eq!(cost(q), 2);
    }

    #[test]
    fn introspection_has_a_fixed_cost() {
        assert_eq!(
            cost("{ __schema { types { fields { type { ofType { name } } } } } }"),
            SCHEMA_COST
        );
        assert_eq!(
            cost("{ __type(name: \"Query\") { fields { name } } }"),
            TYPE_COST
        );
    }

    #[test]
    fn one_full_schema_fits_the_default_limit_and_two_do_not() {
        let limit = crate::graphql::Limits::default().max_complexity as u64;
        assert!(cost("{ __schema { types { name } } }") <= limit);
        assert!(cost("{ a: __schema { types { name } } b: __schema { types { name } } }") > limit);
    }

    fn depth_of(q: &str) -> usize {
        depth(&parse_query(q).unwrap())
    }

    #[test]
    fn depth_counts_fields_with_fragments_inlined() {
        assert_eq!(depth_of("{ me { role } }"), 2);
        assert_eq!(depth_of("{ __typename }"), 1);
        assert_eq!(
            depth_of("{ reps { ...R } } fragment R on Rep { manager { ... on Rep { name } } }"),
            3
        );
        // The deepest operation counts, whichever runs.
        assert_eq!(
            depth_of("query A { me { role } } query B { stages { name } }"),
            2
        );
        // A cycle ends the walk.
        assert_eq!(
            depth_of(
                "{ ...A } fragment A on Query { ...B me { role } } fragment B on Query { ...A }"
            ),
            2
        );
    }

    /// The measure behind the default SALESOPS_MAX_QUERY_DEPTH (15): the
    /// standard introspection documents (tests/api/client.rs) need exactly
    /// that, and cost one `__schema`.
    #[test]
    fn standard_introspection_needs_depth_15() {
        for doc in [
            include_str!("../../../tests/api/fixtures/introspection_graphql_js_16.graphql"),
            include_str!("../../../tests/api/fixtures/introspection_graphql_core_3_2.graphql"),
        ] {
            assert_eq!(depth_of(doc), 15);
            assert_eq!(depth_of(doc), crate::graphql::Limits::default().max_depth);
            assert_eq!(cost(doc), SCHEMA_COST);
        }
    }

    #[test]
    fn depth_of_doubling_fragments_is_linear() {
        let mut q = String::from("query { ...F40 }\nfragment F0 on Query { me { role } }\n");
        for i in 1..=40 {
            q.push_str(&format!(
                "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
                p = i - 1
            ));
        }
        let started = std::time::Instant::now();
        assert_eq!(depth_of(&q), 2);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
