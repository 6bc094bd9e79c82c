//! The README's security model names, for each claim, the test that holds it. This test
//! keeps those names true: every `path::name` in the claims table must be a test function
//! in that file, so a renamed or deleted test cannot leave a claim standing unproven.

use std::path::Path;

fn claims_table(readme: &str) -> Vec<(String, String)> {
    let start = readme.find("### Claims and the tests that hold them").expect("the README has its claims table");
    let table = &readme[start..];
    let end = table[4..].find("\n### ").map_or(table.len(), |i| i + 4);
    let mut refs = Vec::new();
    for cell in table[..end].split('`').skip(1).step_by(2) {
        if let Some((file, name)) = cell.rsplit_once("::") {
            refs.push((file.to_string(), name.to_string()));
        }
    }
    refs
}

#[test]
fn every_test_the_security_model_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let refs = claims_table(&readme);
    assert!(refs.len() >= 20, "the claims table names {} tests; expected the whole table", refs.len());
    let missing: Vec<String> = refs
        .iter()
        .filter(|(file, name)| {
            let source = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            !source.contains(&format!("fn {name}("))
        })
        .map(|(file, name)| format!("{file}::{name}"))
        .collect();
    assert!(missing.is_empty(), "the README names tests that do not exist: {missing:?}");
}
