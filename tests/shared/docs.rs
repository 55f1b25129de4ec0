//! The README, the changelog and `docs/`, read by tests that check them
//! against the program: they are the user's manual, and a manual that
//! drifts from the program misleads.

use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
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
