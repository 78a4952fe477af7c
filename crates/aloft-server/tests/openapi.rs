//! `docs/openapi.json` is the document the server serves: a change to the API's types or
//! routes that is not written there fails here. `ALOFT_BLESS=1 cargo test -p aloft-server
//! --test openapi` rewrites it.

#[test]
fn the_committed_openapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let current = aloft_server::openapi_json() + "\n";
    if std::env::var_os("ALOFT_BLESS").is_some() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "docs/openapi.json is not the document the server serves; run \
         `ALOFT_BLESS=1 cargo test -p aloft-server --test openapi` and commit it"
    );
}

#[test]
fn every_schema_the_document_refers_to_is_in_it() {
    let document: serde_json::Value = serde_json::from_str(&aloft_server::openapi_json()).unwrap();
    let text = document.to_string();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(
            schemas.contains_key(name),
            "{name} is referred to but not defined"
        );
    }
}
