//! The layers of doc/architecture.md hold: the crate's top-level modules depend on each
//! other without a circle, so each can be read (and tested) with only what is below it.
//! Read from the source: every `crate::<module>` path or `use crate::{...}` outside a
//! comment and outside a `#[cfg(test)]` module counts as a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments and its unit-test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// `crate::a`, `crate::{a, b::c}` and `crate::a::{..}`: the top-level modules named.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for part in code.split("crate::").skip(1) {
        if let Some(group) = part.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or_default();
            for item in group.split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                names.insert(name);
            }
        } else {
            names.insert(part.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    names.retain(|n| !n.is_empty() && n.chars().next().is_some_and(char::is_lowercase));
    names
}

fn dependencies() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel.iter().next().and_then(|c| c.to_str()).expect("name").trim_end_matches(".rs").to_string();
        if top == "bin" || top == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let deps = graph.entry(top.clone()).or_default();
        deps.extend(named_modules(&code(&text)).into_iter().filter(|d| *d != top));
    }
    graph
}

/// A circle through `start`, if the graph has one.
fn circle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                return Some([path.clone(), vec![start.to_string()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn the_top_level_modules_depend_on_each_other_without_a_circle() {
    let graph = dependencies();
    assert!(graph.len() > 10, "the source was read: {graph:?}");
    for module in graph.keys() {
        if let Some(circle) = circle_from(&graph, module) {
            panic!("a circle between layers: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn only_the_c_boundary_reaches_the_module_state_and_nothing_reaches_the_c_boundary() {
    let graph = dependencies();
    for (module, deps) in &graph {
        if module != "ffi" {
            assert!(!deps.contains("module"), "{module} reaches up to the process state (module)");
        }
        assert!(!deps.contains("ffi"), "{module} reaches up to the C boundary");
    }
}

#[test]
fn the_reader_finds_what_it_is_meant_to() {
    // The reader above must see a real dependency, or the tests above prove nothing.
    let names = named_modules(
        "use crate::{error::Result, store::Caller};\nlet x = crate::mechanism::primitives::sha256(b\"\");",
    );
    assert_eq!(names, ["error", "mechanism", "store"].into_iter().map(String::from).collect());
    assert!(named_modules(&code("// crate::session is only named in a comment")).is_empty());
}
