//! The README, the changelog and `docs/`, read by tests that check them
//! against the program: they are the user's manual, and a manual that
//! drifts from the program misleads.

use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The whole README.
pub fn text() -> String {
    page("README.md")
}

/// A page of the documentation, by its path in the repository
/// (`docs/configuration.md`).
pub fn page(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Markdown pages: the README, the changelog, the benchmarks and every
/// page of `docs/`, as (path in the repository, text), in path order.
pub fn pages() -> Vec<(String, String)> {
    let mut paths = vec![
        "README.md".to_string(),
        "CHANGELOG.md".to_string(),
        "BENCHMARKS.md".to_string(),
    ];
    let mut docs: Vec<String> = std::fs::read_dir(repo("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| format!("docs/{}", p.file_name().expect("name").to_string_lossy()))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.into_iter().map(|p| (p.clone(), page(&p))).collect()
}

/// The text of the README's `## ` section, up to the next one.
pub fn section(heading: &str) -> String {
    page_section("README.md", heading)
}

/// The text of a page's section, from its heading (`## Flags`) up to the
/// next heading of the same or a higher level.
pub fn page_section(path: &str, heading: &str) -> String {
    let text = page(path);
    let level = heading.chars().take_while(|&c| c == '#').count();
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{path} has no {heading}"));
    let rest = &text[start + heading.len() + 2..];
    let end = headings(rest)
        .into_iter()
        .find(|(l, _, _)| *l <= level)
        .map_or(rest.len(), |(_, _, at)| at);
    rest[..end].to_string()
}

/// The fenced code blocks of a language (```yaml …```) of every page, in
/// order, with their indentation removed (blocks inside list items are
/// indented).
pub fn code_blocks(lang: &str) -> Vec<String> {
    pages()
        .iter()
        .flat_map(|(_, text)| code_blocks_of(text, lang))
        .collect()
}

/// The fenced code blocks of a language in one text.
pub fn code_blocks_of(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match current.take() {
            None if trimmed == format!("```{lang}") => current = Some((indent, Vec::new())),
            None => {}
            Some((_, lines)) if trimmed == "```" => blocks.push(lines.join("\n") + "\n"),
            Some((indent, mut lines)) => {
                lines.push(line.get(indent..).unwrap_or("").to_string());
                current = Some((indent, lines));
            }
        }
    }
    blocks
}

/// The lines of a text outside fenced code blocks, with their byte offsets.
pub fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        match fence {
            Some(f) if trimmed.starts_with(f) && trimmed.trim_start_matches(f).is_empty() => {
                fence = None
            }
            Some(_) => {}
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => out.push((at, line.trim_end_matches('\n'))),
        }
        at += line.len();
    }
    out
}

/// The ATX headings (`## Title`) of a text outside code blocks: (level,
/// title, byte offset of the line).
pub fn headings(text: &str) -> Vec<(usize, String, usize)> {
    prose_lines(text)
        .into_iter()
        .filter_map(|(at, line)| {
            let level = line.chars().take_while(|&c| c == '#').count();
            let title = line.get(level..)?;
            (1..=6)
                .contains(&level)
                .then_some(())
                .filter(|()| title.starts_with(' '))
                .map(|()| {
                    (
                        level,
                        title.trim().trim_end_matches('#').trim().to_string(),
                        at,
                    )
                })
        })
        .collect()
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to `-`,
/// punctuation other than `-` and `_` dropped (so "What `--demo` shows" is
/// `what---demo-shows`).
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a page, as GitHub makes them: a heading whose anchor an
/// earlier heading already has gets `-1`, `-2`, … appended.
pub fn anchors(text: &str) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut out = std::collections::BTreeSet::new();
    for (_, title, _) in headings(text) {
        let base = anchor(&title);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The link targets of a text (`[text](target)` and `[label]: target`),
/// outside code blocks and inline code.
pub fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, line) in prose_lines(text) {
        // Inline code is not a link, whatever it holds.
        let mut prose = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                prose.push_str(part);
            }
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push(target.trim_matches(['<', '>']).to_string());
            rest = &after[end..];
        }
        let trimmed = prose.trim_start();
        if let Some(def) = trimmed.strip_prefix('[') {
            if let Some((_, target)) = def.split_once("]: ") {
                out.push(target.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    }
    out
}
