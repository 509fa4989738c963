//! The engine's layers import only downward: every `crate::…` path in `engine/src` (tests
//! aside) names a module of a lower layer than its own, so the import graph has no cycle.
//!
//! `cargo test -p capstan-engine --test layers -- --nocapture` prints each module's
//! imports.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// The layers, bottom first: a module may import any module of a lower layer, and none of
/// its own layer or above.
const LAYERS: &[&[&str]] = &[
    &["proto", "limits"],
    &["search_attributes"],
    &[
        "pb",
        "clock",
        "errors",
        "event_log",
        "recent_requests",
        "visibility",
        "timers",
        "validate",
    ],
    &["matching", "schedules"],
    &["run"],
    &["state"],
    &["store"],
    &["timer_service", "service"],
    &["http"],
    &["web_ui"],
    &["tls", "auth", "health", "simulation", "lib"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS"))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`lib` for `lib.rs` and `main.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    let name = first.to_string_lossy();
    match name.trim_end_matches(".rs") {
        "main" => "lib".to_owned(),
        other => other.to_owned(),
    }
}

/// The text of a file without its test modules (`#[cfg(test)] mod tests { … }` at the
/// end of a file, a `tests.rs` file, or a `tests/` folder's).
fn non_test_text(file: &Path) -> Option<String> {
    let in_tests = file.components().any(|c| c.as_os_str() == "tests");
    if in_tests || file.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(file).unwrap();
    Some(match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => text[..at].to_owned(),
        None => text,
    })
}

/// The top-level modules a text names as `crate::name`, or in a `use crate::{a, b::…}`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{…}, c}`: the names at depth one.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && depth == 0 => {
                        found.insert(ident(&group[i..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
    found
}

#[test]
fn layers_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(text) = non_test_text(file) else {
            continue;
        };
        let module = module_of(&src, file);
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    let mut wrong = Vec::new();
    for (module, imported) in &graph {
        println!(
            "{module:>14} (layer {}) imports {imported:?}",
            layer(module)
        );
        for other in imported {
            let (from, to) = (layer(module), layer(other));
            if to >= from {
                wrong.push(format!(
                    "`{module}` (layer {from}) imports `{other}` (layer {to})"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_import_scanner_sees_grouped_and_nested_paths() {
    let text = "use crate::{errors, proto::{self, x}, run::Run};\nlet x = crate::clock::now();";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["clock", "errors", "proto", "run"]);
}
