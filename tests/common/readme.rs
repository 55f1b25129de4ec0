//! The README, read by tests that check it against the program: it is the
//! user's manual, and a manual that drifts from the program misleads.

/// The whole README.
pub fn text() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The text of a `## ` section, up to the next one.
pub fn section(heading: &str) -> String {
    let readme = text();
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading}"));
    let rest = &readme[start + heading.len() + 2..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The fenced code blocks of a language (```yaml …```), in order, with their
/// indentation removed (blocks inside list items are indented).
pub fn code_blocks(lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, Vec<String>)> = None;
    for line in text().lines() {
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
