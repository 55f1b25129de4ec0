//! The layering written in `src/lib.rs` stays true: every `crate::` path in
//! `src/` points to the module's own layer or one below, every module is in
//! exactly one layer, and no two sibling files of a module use each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers of `lib.rs`'s doc comment: module → layer number.
fn layers() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((n, rest)) = rest.split_once(". ") else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        let Some((_, modules)) = rest.split_once(": ") else {
            continue;
        };
        for m in modules.split(", ") {
            let m = m.trim().trim_matches('`');
            assert!(
                out.insert(m.to_string(), n).is_none(),
                "{m} is in two layers"
            );
        }
    }
    out
}

/// Every `.rs` file under `src/` but the crate roots and binaries.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "bin") {
                files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `aws/sdk.rs` → ["aws", "sdk"], `aws/mod.rs` → ["aws"].
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The identifiers that follow `prefix` in `text` (`crate::aws::x` → `aws`).
fn after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .filter(|(i, _)| {
            // Not part of a longer path such as `imagebuilder_exporter::crate`.
            text[..*i]
                .chars()
                .last()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != ':')
        })
        .filter_map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            (end > 0).then(|| &rest[..end])
        })
        .collect()
}

/// Strips comments (so that doc text naming a module is not a use of it).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_module_uses_only_its_layer_and_those_below() {
    let layers = layers();
    assert!(layers.len() > 10, "no layering in lib.rs: {layers:?}");
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let declared: BTreeSet<String> = after(&lib, "pub mod ")
        .into_iter()
        .chain(after(&lib, "pub(crate) mod "))
        .map(str::to_string)
        .collect();
    let listed: BTreeSet<String> = layers.keys().cloned().collect();
    assert_eq!(declared, listed, "lib.rs's modules and its layers differ");

    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in all {
        let module = module_of(&path);
        let Some(top) = module.first().filter(|m| *m != "lib" && *m != "main") else {
            continue;
        };
        let own = layers[top.as_str()];
        let code = code_of(&std::fs::read_to_string(&path).expect("source"));
        for used in after(&code, "crate::") {
            let Some(&theirs) = layers.get(used) else {
                continue; // an item of lib.rs, or a macro path
            };
            checked += 1;
            if theirs > own {
                problems.push(format!(
                    "{} (layer {own}) uses crate::{used} (layer {theirs})",
                    path.display()
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "too few uses found ({checked}): is the parser right?"
    );
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn no_two_sibling_files_use_each_other() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    // (parent module, file) → the siblings it uses through `super::`.
    let mut uses: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &all {
        let module = module_of(path);
        if module.len() < 2 || path.file_name().is_some_and(|n| n == "mod.rs") {
            continue;
        }
        let parent = module[..module.len() - 1].join("::");
        siblings
            .entry(parent.clone())
            .or_default()
            .insert(module[module.len() - 1].clone());
        let code = code_of(&std::fs::read_to_string(path).expect("source"));
        let mut used: BTreeSet<String> = after(&code, "super::")
            .into_iter()
            .map(str::to_string)
            .collect();
        // `crate::simulator::http` from a sibling is the same use.
        used.extend(
            after(&code, &format!("crate::{parent}::"))
                .into_iter()
                .map(str::to_string),
        );
        uses.insert((parent, module[module.len() - 1].clone()), used);
    }
    let mut problems = Vec::new();
    for ((parent, file), used) in &uses {
        for other in used {
            if other == file || !siblings[parent].contains(other) {
                continue;
            }
            let back = uses
                .get(&(parent.clone(), other.clone()))
                .is_some_and(|u| u.contains(file));
            if back && file < other {
                problems.push(format!(
                    "{parent}::{file} and {parent}::{other} use each other"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
