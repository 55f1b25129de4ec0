//! The layering written in `src/lib.rs` holds: `src/` has one folder per
//! layer and nothing else but `lib.rs` and `main.rs`; every path of a file
//! (in a `use`, grouped or not, in code, in a macro) leads to its own layer
//! or one below; no two sibling files (or folders) of one module use each
//! other. Paths are read with `syn` and followed through re-exports, so
//! `use super::Phase` in `discovery/read.rs` is a use of
//! `discovery/backfill.rs`, where `Phase` is defined.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// A module path from the crate root: `["refresh", "discovery", "read"]`.
type ModPath = Vec<String>;

/// What one file says: the modules it holds (its own and inline ones), what
/// they define and re-export, and every path it names.
#[derive(Default)]
struct FileFacts {
    /// Inline modules (`mod tests { … }`) as well as the file's own.
    modules: BTreeSet<ModPath>,
    /// Items defined, per module.
    defined: BTreeMap<ModPath, BTreeSet<String>>,
    /// `pub use` and `pub(crate) use`, per module: name → absolute path.
    reexports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
    /// `pub use x::*`, per module.
    globs: BTreeMap<ModPath, Vec<ModPath>>,
    /// Every path named, with the module it is named in, as written.
    named: Vec<(ModPath, Vec<String>)>,
}

/// Walks a file's syntax tree, keeping the module it is in.
struct Walker<'a> {
    stack: ModPath,
    facts: &'a mut FileFacts,
}

impl Walker<'_> {
    fn record(&mut self, path: Vec<String>) {
        if path.len() >= 2 {
            self.facts.named.push((self.stack.clone(), path));
        }
    }
}

/// A `use` tree flattened: (path, name it is bound to, glob).
fn flatten(tree: &syn::UseTree, prefix: &[String], out: &mut Vec<(Vec<String>, String, bool)>) {
    let with = |s: &syn::Ident| {
        let mut p = prefix.to_vec();
        p.push(s.to_string());
        p
    };
    match tree {
        syn::UseTree::Path(p) => flatten(&p.tree, &with(&p.ident), out),
        syn::UseTree::Name(n) if n.ident == "self" => {
            let name = prefix.last().cloned().unwrap_or_default();
            out.push((prefix.to_vec(), name, false));
        }
        syn::UseTree::Name(n) => out.push((with(&n.ident), n.ident.to_string(), false)),
        syn::UseTree::Rename(r) if r.ident == "self" => {
            out.push((prefix.to_vec(), r.rename.to_string(), false))
        }
        syn::UseTree::Rename(r) => out.push((with(&r.ident), r.rename.to_string(), false)),
        syn::UseTree::Glob(_) => out.push((prefix.to_vec(), "*".into(), true)),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten(t, prefix, out)),
    }
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let name = m.ident.to_string();
        self.facts
            .defined
            .entry(self.stack.clone())
            .or_default()
            .insert(name.clone());
        if m.content.is_some() {
            self.stack.push(name);
            self.facts.modules.insert(self.stack.clone());
            visit::visit_item_mod(self, m);
            self.stack.pop();
        }
    }

    fn visit_item(&mut self, i: &'ast syn::Item) {
        let ident = match i {
            syn::Item::Const(x) => Some(&x.ident),
            syn::Item::Enum(x) => Some(&x.ident),
            syn::Item::Fn(x) => Some(&x.sig.ident),
            syn::Item::Static(x) => Some(&x.ident),
            syn::Item::Struct(x) => Some(&x.ident),
            syn::Item::Trait(x) => Some(&x.ident),
            syn::Item::Type(x) => Some(&x.ident),
            syn::Item::Union(x) => Some(&x.ident),
            syn::Item::Macro(x) => x.ident.as_ref(),
            _ => None,
        };
        if let Some(ident) = ident {
            self.facts
                .defined
                .entry(self.stack.clone())
                .or_default()
                .insert(ident.to_string());
        }
        visit::visit_item(self, i);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut flat = Vec::new();
        flatten(&u.tree, &[], &mut flat);
        let public = !matches!(u.vis, syn::Visibility::Inherited);
        for (path, name, glob) in flat {
            if public {
                let here = self.stack.clone();
                if glob {
                    self.facts.globs.entry(here).or_default().push(path.clone());
                } else {
                    self.facts
                        .reexports
                        .entry(here)
                        .or_default()
                        .insert(name, path.clone());
                }
            }
            self.record(path);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.record(p.segments.iter().map(|s| s.ident.to_string()).collect());
        visit::visit_path(self, p);
    }

    /// Macro bodies are token streams: `crate :: a :: b` sequences in them
    /// (in `tracing::info!(…)`, say) are paths too.
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let tokens: Vec<proc_macro2::TokenTree> = flatten_tokens(m.tokens.clone());
        let mut i = 0;
        while i < tokens.len() {
            let mut path = Vec::new();
            let mut j = i;
            while let Some(proc_macro2::TokenTree::Ident(id)) = tokens.get(j) {
                path.push(id.to_string());
                let colons = matches!(
                    (tokens.get(j + 1), tokens.get(j + 2)),
                    (Some(proc_macro2::TokenTree::Punct(a)), Some(proc_macro2::TokenTree::Punct(b)))
                        if a.as_char() == ':' && b.as_char() == ':'
                );
                if !colons {
                    break;
                }
                j += 3;
            }
            if path
                .first()
                .is_some_and(|f| f == "crate" || f == "super" || f == "self")
            {
                self.record(path);
            }
            i = j.max(i) + 1;
        }
        visit::visit_macro(self, m);
    }
}

fn flatten_tokens(ts: proc_macro2::TokenStream) -> Vec<proc_macro2::TokenTree> {
    let mut out = Vec::new();
    for t in ts {
        match t {
            proc_macro2::TokenTree::Group(g) => out.extend(flatten_tokens(g.stream())),
            other => out.push(other),
        }
    }
    out
}

/// The module path of a file: `aws/sdk.rs` → ["aws", "sdk"], `aws/mod.rs` →
/// ["aws"], `lib.rs` → [].
fn module_of(src: &Path, path: &Path) -> ModPath {
    let rel = path.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The library's files (not `main.rs`, a binary of its own), parsed.
struct Crate {
    /// File module → facts.
    files: BTreeMap<ModPath, FileFacts>,
    /// Every module (inline ones too) → the file module that holds it.
    owner: BTreeMap<ModPath, ModPath>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut paths = Vec::new();
        rust_files(src, &mut paths);
        let mut files = BTreeMap::new();
        let mut owner = BTreeMap::new();
        for path in paths {
            if path == src.join("main.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            let ast = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            let module = module_of(src, &path);
            let mut facts = FileFacts::default();
            facts.modules.insert(module.clone());
            Walker {
                stack: module.clone(),
                facts: &mut facts,
            }
            .visit_file(&ast);
            for m in &facts.modules {
                owner.insert(m.clone(), module.clone());
            }
            files.insert(module, facts);
        }
        Crate { files, owner }
    }

    /// `path`, named in module `at`, from the crate root; `None` for a path
    /// outside the crate (`std::…`, another crate, a local item).
    fn absolute(&self, at: &[String], path: &[String]) -> Option<ModPath> {
        let first = path.first()?;
        let (mut base, rest): (ModPath, &[String]) = match first.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (at.to_vec(), &path[1..]),
            "super" => {
                let mut base = at.to_vec();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                (base, rest)
            }
            _ => {
                // A child module named without `self::` (2018 paths).
                let mut child = at.to_vec();
                child.push(first.clone());
                if !self.owner.contains_key(&child) {
                    return None;
                }
                (at.to_vec(), path)
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what `path` (from the root) names, following
    /// re-exports.
    fn file_of(&self, path: &[String], depth: usize) -> Option<ModPath> {
        assert!(depth < 16, "re-exports loop at {path:?}");
        let (module, rest) = (0..=path.len())
            .rev()
            .map(|n| (&path[..n], &path[n..]))
            .find(|(m, _)| self.owner.contains_key(*m))?;
        let file = &self.owner[module];
        let facts = &self.files[file];
        if let Some(name) = rest.first() {
            let defined = facts.defined.get(module).is_some_and(|d| d.contains(name));
            if !defined {
                if let Some(target) = facts.reexports.get(module).and_then(|r| r.get(name)) {
                    let mut next = self.absolute(module, target)?;
                    next.extend(rest[1..].iter().cloned());
                    return self.file_of(&next, depth + 1);
                }
                for glob in facts.globs.get(module).into_iter().flatten() {
                    let Some(mut next) = self.absolute(module, glob) else {
                        continue;
                    };
                    next.extend(rest.iter().cloned());
                    if let Some(f) = self.file_of(&next, depth + 1) {
                        if &f != file {
                            return Some(f);
                        }
                    }
                }
            }
        }
        Some(file.clone())
    }

    /// Every use of one file by another: (user, used).
    fn edges(&self) -> BTreeSet<(ModPath, ModPath)> {
        let mut out = BTreeSet::new();
        for (file, facts) in &self.files {
            for (at, path) in &facts.named {
                let Some(abs) = self.absolute(at, path) else {
                    continue;
                };
                if let Some(target) = self.file_of(&abs, 0) {
                    if &target != file && !target.is_empty() {
                        out.insert((file.clone(), target));
                    }
                }
            }
        }
        out
    }
}

/// The layers of `lib.rs`'s doc comment (`//! 3. model: [`model`], …`):
/// folder → layer number.
fn layers(src: &Path) -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some((n, rest)) = line.strip_prefix("//! ").and_then(|r| r.split_once(". ")) else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        let Some((_, folder)) = rest.split_once(": [`") else {
            continue;
        };
        let folder = folder.split('`').next().expect("a folder").to_string();
        assert!(out.insert(folder.clone(), n).is_none(), "{folder} twice");
    }
    out
}

/// What is wrong with the layering of the crate at `src`, one line each.
fn problems(src: &Path) -> (Vec<String>, usize) {
    let layers = layers(src);
    let mut problems = Vec::new();

    // The root: lib.rs, main.rs and the layers' folders, declared in lib.rs.
    let mut entries = BTreeSet::new();
    for e in std::fs::read_dir(src).expect("src") {
        entries.insert(e.expect("entry").file_name().to_string_lossy().to_string());
    }
    let folders: BTreeSet<String> = entries
        .iter()
        .filter(|e| src.join(e).is_dir())
        .cloned()
        .collect();
    let listed: BTreeSet<String> = layers.keys().cloned().collect();
    if folders != listed {
        problems.push(format!(
            "src/ has folders {folders:?}, lib.rs lists {listed:?}"
        ));
    }
    let loose: Vec<&String> = entries
        .iter()
        .filter(|e| !folders.contains(*e) && *e != "lib.rs" && *e != "main.rs")
        .collect();
    if !loose.is_empty() {
        problems.push(format!(
            "src/ holds {loose:?} besides lib.rs, main.rs and the layers"
        ));
    }
    if entries.len() > 12 {
        problems.push(format!("src/ has {} entries, more than 12", entries.len()));
    }
    let mut numbers: Vec<usize> = layers.values().copied().collect();
    numbers.sort();
    if numbers != (1..=layers.len()).collect::<Vec<_>>() {
        problems.push(format!("the layers are not numbered 1 to n: {numbers:?}"));
    }

    let krate = Crate::read(src);
    let declared: BTreeSet<String> = krate.files[&Vec::new()]
        .defined
        .get(&Vec::new())
        .into_iter()
        .flatten()
        .filter(|m| krate.owner.contains_key(&vec![m.to_string()]))
        .cloned()
        .collect();
    if declared != listed {
        problems.push(format!(
            "lib.rs declares {declared:?}, its layers are {listed:?}"
        ));
    }

    let edges = krate.edges();
    let name = |m: &ModPath| m.join("::");
    for (user, used) in &edges {
        let (Some(a), Some(b)) = (
            user.first().and_then(|f| layers.get(f)),
            used.first().and_then(|f| layers.get(f)),
        ) else {
            continue;
        };
        if b > a {
            problems.push(format!(
                "{} (layer {a}) uses {} (layer {b})",
                name(user),
                name(used)
            ));
        }
    }
    // Siblings: two modules of one parent, one of them used through the
    // other's children too (a folder's file using a sibling folder's file).
    let mut pairs = BTreeSet::new();
    for (user, used) in &edges {
        let common = user.iter().zip(used).take_while(|(a, b)| a == b).count();
        if common < user.len() && common < used.len() {
            pairs.insert((user[..=common].to_vec(), used[..=common].to_vec()));
        }
    }
    for (a, b) in &pairs {
        if a < b && pairs.contains(&(b.clone(), a.clone())) {
            problems.push(format!("{} and {} use each other", name(a), name(b)));
        }
    }
    (problems, edges.len())
}

#[test]
fn src_shows_its_layers_and_no_path_goes_up_or_round() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (problems, edges) = problems(&src);
    assert!(
        layers(&src).len() >= 5,
        "no layer list in lib.rs: is the parser right?"
    );
    assert!(edges > 150, "only {edges} uses found: is the parser right?");
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The checker on a crate made to break every rule in the ways that slip
/// past a line-based reader: a grouped import, a re-export, a path in a
/// macro, an upward use through a child module's short path.
#[test]
fn the_checker_sees_grouped_imports_reexports_and_macros() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    write(
        "lib.rs",
        "//! 1. low: [`low`], below\n//! 2. high: [`high`], above\npub mod high;\npub mod low;\n",
    );
    write("high/mod.rs", "pub struct Top;\n");
    write(
        "low/mod.rs",
        "mod a;\nmod b;\nmod c;\nmod d;\npub use a::Thing;\n",
    );
    // a uses b through a grouped import; b uses a through the re-export.
    write(
        "low/a.rs",
        "use super::{b::{Other}, c};\npub struct Thing;\nfn f(_: Other) { let _ = c::C; }\n",
    );
    write(
        "low/b.rs",
        "use super::Thing;\npub struct Other;\nfn g(_: Thing) {}\n",
    );
    // c goes up through a grouped import from the root.
    write(
        "low/c.rs",
        "use crate::{high::{Top}};\npub const C: u8 = 0;\nfn h(_: Top) {}\n",
    );
    // d goes up inside a macro only.
    write(
        "low/d.rs",
        "fn i() { println!(\"{:?}\", crate::high::Top); }\n",
    );
    let (mut problems, _) = problems(src);
    problems.sort();
    assert_eq!(
        problems,
        [
            "low::a and low::b use each other",
            "low::c (layer 1) uses high (layer 2)",
            "low::d (layer 1) uses high (layer 2)",
        ]
    );
}
