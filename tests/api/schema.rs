/// schema.graphql is generated from the code; rerun with UPDATE_SCHEMA=1
/// after an intended API change.
#[test]
fn schema_graphql_is_current() {
    let sdl = api::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(path).expect("schema.graphql");
    assert!(
        committed == sdl,
        "schema.graphql is stale: rerun the tests with UPDATE_SCHEMA=1 and commit it"
    );
}
