//! The layer rule of docs/ARCHITECTURE.md ("Layers"), checked on the source: a
//! module may use only modules of a lower layer. The table in the document is the
//! rule itself (this test reads it), so the two cannot drift; a new top-level module
//! must be placed in it.

use std::{collections::BTreeMap, fs, path::Path};

/// Layer of each top-level module, from the "Layers" table of docs/ARCHITECTURE.md.
fn layers() -> BTreeMap<String, u32> {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md")).unwrap();
    let section = doc.split("\n## Layers").nth(1).expect("docs/ARCHITECTURE.md has a `## Layers` section");
    let section = section.split("\n## ").next().unwrap();
    let mut layers = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Ok(layer) = cells[1].parse::<u32>() else { continue };
        for module in cells[2].split('`').skip(1).step_by(2) {
            assert!(layers.insert(module.to_string(), layer).is_none(), "`{module}` is in two layers");
        }
    }
    assert!(layers.len() > 10, "the Layers table was not found: {layers:?}");
    layers
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names: `crate::x` anywhere, and the first segment
/// of each item of a `use crate::{...}` tree.
fn uses(source: &str) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut found = vec![];
    for (i, _) in source.match_indices("crate::") {
        let rest = &source[i + "crate::".len()..];
        if let Some(tree) = rest.strip_prefix('{') {
            // The items at depth 1 of the brace tree.
            let (mut depth, mut item_start) = (1, true);
            for (j, c) in tree.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && !c.is_whitespace() => {
                        found.push(ident(&tree[j..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

#[test]
fn modules_use_only_lower_layers() {
    let layers = layers();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    sources(&src, &mut files);
    let mut violations = vec![];
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        if relative == "lib.rs" || relative == "main.rs" {
            continue;
        }
        let module = relative.split('/').next().unwrap().trim_end_matches(".rs").to_string();
        let Some(&own) = layers.get(&module) else {
            violations.push(format!("{relative}: module `{module}` is in no layer (add it to docs/ARCHITECTURE.md)"));
            continue;
        };
        // Comments may name any module; only code counts.
        let source: String = fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for used in uses(&source) {
            if used == module {
                continue;
            }
            match layers.get(&used) {
                Some(&theirs) if theirs < own => {}
                Some(&theirs) => violations.push(format!(
                    "{relative}: `{module}` (layer {own}) uses `{used}` (layer {theirs}); only lower layers may be used"
                )),
                None => violations.push(format!("{relative}: uses `{used}`, which is in no layer")),
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(violations.is_empty(), "layer rule broken:\n{}", violations.join("\n"));
}

/// SQL lives in `store/` only, compile-checked there; the one exception creates the
/// database the store will use, before there is a store (`embedded_pg`).
#[test]
fn sql_is_written_only_in_the_store() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    sources(&src, &mut files);
    let mut outside = vec![];
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        if relative.starts_with("store/") || relative == "embedded_pg.rs" {
            continue;
        }
        let source = fs::read_to_string(&file).unwrap();
        for (n, line) in source.lines().enumerate() {
            if !line.trim_start().starts_with("//") && (line.contains("sqlx::query") || line.contains("query_as!")) {
                outside.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(outside.is_empty(), "SQL outside src/store/:\n{}", outside.join("\n"));
}

#[test]
fn the_use_reader_sees_trees_and_paths() {
    let source =
        "use crate::{\n    api::AppState,\n    domain::{a, b::{c}},\n    store,\n};\nfn f() { crate::costs::x(); }";
    assert_eq!(uses(source), ["api", "domain", "store", "costs"]);
}
