//! The bundled Grafana dashboards as tests read them: panels and their
//! queries, template variables, Grafana's interpolation of variables into a
//! query, the metric names a PromQL expression uses, and what it does with
//! the series of several exporter replicas.
//!
//! Shared by the static dashboard test and the end-to-end test against a
//! real Prometheus, so that both read the dashboard the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

/// What every datasource reference must point at: the dashboard's
/// datasource variable, never a hard-coded UID.
pub const DATASOURCE_VAR: &str = "${datasource}";

/// The scrape's variables, chained: `cluster` (optional: ignored when
/// Prometheus adds no such label), `job`, then the exporter replicas.
pub const SCRAPE_VARIABLES: [&str; 3] = ["cluster", "job", "instance"];

/// The label variables of images and steps, in the order they are chained
/// (each one's query is filtered by the ones before it, after `cluster`
/// and `job`).
pub const LABEL_VARIABLES: [&str; 5] = ["account_id", "region", "image", "workflow_arn", "action"];

/// The exporter's targets, for its health panels (after `instance`).
pub const TARGET_VARIABLE: &str = "target";

/// Every variable but the data source, in the dashboard's order.
pub fn all_variables() -> Vec<&'static str> {
    let mut v: Vec<&str> = SCRAPE_VARIABLES.to_vec();
    v.extend(LABEL_VARIABLES);
    v.push(TARGET_VARIABLE);
    v
}

/// Grafana's built-in variables the dashboard may use.
pub const BUILTINS: [&str; 4] = ["__rate_interval", "__interval", "__range", "__range_s"];

/// The dashboard files under `dashboards/`.
pub fn dashboard_paths() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no dashboard in {}", dir.display());
    paths
}

pub fn load(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every panel, rows included, and the panels of collapsed rows.
pub fn panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(inner) = p.get("panels") {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(list) = dash.get("panels") {
        walk(list, &mut out);
    }
    out
}

/// One query of one panel.
#[derive(Debug, Clone)]
pub struct Target {
    pub panel: String,
    pub panel_type: String,
    pub ref_id: String,
    pub expr: String,
    /// An instant query (tables, stats); otherwise a range query.
    pub instant: bool,
    /// How Grafana names each series (`{{label}}` placeholders).
    pub legend: String,
}

impl Target {
    pub fn name(&self) -> String {
        format!("panel {:?} query {}", self.panel, self.ref_id)
    }
}

pub fn targets(dash: &Value) -> Vec<Target> {
    let mut out = Vec::new();
    for p in panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Target {
                panel: p["title"].as_str().unwrap_or_default().to_string(),
                panel_type: p["type"].as_str().unwrap_or_default().to_string(),
                ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                expr: t["expr"].as_str().unwrap_or_default().to_string(),
                instant: t["instant"].as_bool().unwrap_or(false),
                legend: t["legendFormat"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    out
}

/// A template variable.
#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub kind: String,
    /// The query: `label_values(...)` for a query variable, the plugin
    /// type for a datasource variable.
    pub query: String,
    pub multi: bool,
    pub include_all: bool,
    pub all_value: Option<String>,
}

pub fn variables(dash: &Value) -> Vec<Variable> {
    dash["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            // Grafana 10+ stores a query variable's query as an object;
            // older dashboards as a plain string. Both are read.
            let query = match &v["query"] {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                _ => String::new(),
            };
            Variable {
                name: v["name"].as_str().unwrap_or_default().to_string(),
                kind: v["type"].as_str().unwrap_or_default().to_string(),
                query,
                multi: v["multi"].as_bool().unwrap_or(false),
                include_all: v["includeAll"].as_bool().unwrap_or(false),
                all_value: v["allValue"].as_str().map(str::to_string),
            }
        })
        .collect()
}

/// `label_values(selector, label)` → (selector, label).
pub fn parse_label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    // The label is after the last comma outside braces and quotes.
    let (mut depth, mut quoted, mut split) = (0i32, false, None);
    let mut prev = '\0';
    for (i, c) in inner.char_indices() {
        match c {
            '"' if prev != '\\' => quoted = !quoted,
            '{' | '(' if !quoted => depth += 1,
            '}' | ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => split = Some(i),
            _ => {}
        }
        prev = c;
    }
    let i = split?;
    let (selector, label) = (inner[..i].trim(), inner[i + 1..].trim());
    let valid_label = !label.is_empty()
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !label.starts_with(|c: char| c.is_ascii_digit());
    (valid_label && !selector.is_empty()).then(|| (selector.to_string(), label.to_string()))
}

/// The values picked for a variable.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    Values(Vec<String>),
}

/// Escapes a value the way Grafana's Prometheus datasource does for a
/// multi-value or "All" variable: regex metacharacters get a backslash,
/// itself escaped for the PromQL string (so `.` becomes `\\.` in the text).
pub fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '\'' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str("\\\\");
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Replaces `$name` and `${name}` as Grafana would before sending `expr`
/// to Prometheus. `builtins` gives `__rate_interval` and friends. Unknown
/// names are left as they are, so a test sees them.
pub fn interpolate(
    expr: &str,
    vars: &[Variable],
    selected: &BTreeMap<String, Selection>,
    builtins: &[(&str, &str)],
) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let value = builtins
            .iter()
            .find(|(b, _)| *b == name)
            .map(|(_, v)| v.to_string())
            .or_else(|| {
                let var = vars.iter().find(|v| v.name == name)?;
                Some(format_selection(var, selected.get(name)?))
            });
        match value {
            Some(v) if !name.is_empty() => {
                out.push_str(&v);
                rest = &after[consumed..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn format_selection(var: &Variable, sel: &Selection) -> String {
    let regex = var.multi || var.include_all;
    match sel {
        // Without a custom all value, Grafana's "All" is the alternation of
        // every value the variable's query offers; these stand for them.
        Selection::All => var
            .all_value
            .clone()
            .unwrap_or_else(|| format!("({0}-a|{0}-b)", var.name)),
        Selection::Values(vs) if vs.len() == 1 && !regex => vs[0].clone(),
        Selection::Values(vs) if vs.len() == 1 => regex_escape(&vs[0]),
        Selection::Values(vs) => format!(
            "({})",
            vs.iter()
                .map(|v| regex_escape(v))
                .collect::<Vec<_>>()
                .join("|")
        ),
    }
}

/// A PromQL token, as far as these tests need to tell them apart.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Ident(String),
    Str(String),
    Number(String),
    /// A Grafana variable, `$name` or `${name}`.
    Var(String),
    Punct(char),
    Op(String),
}

/// Splits PromQL (possibly with Grafana variables) into tokens, and checks
/// that strings are closed and brackets balanced.
pub fn lex(expr: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut open: Vec<char> = Vec::new();
    let mut i = 0;
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(format!("unterminated string in {expr:?}"));
                };
                i += 1;
                if d == c {
                    break;
                }
                if d == '\\' && c != '`' {
                    let Some(&e) = chars.get(i) else {
                        return Err(format!("unterminated string in {expr:?}"));
                    };
                    s.push('\\');
                    s.push(e);
                    i += 1;
                } else {
                    s.push(d);
                }
            }
            tokens.push(Token::Str(s));
        } else if c == '$' {
            i += 1;
            let name: String = if chars.get(i) == Some(&'{') {
                let end = chars[i..]
                    .iter()
                    .position(|&d| d == '}')
                    .ok_or_else(|| format!("unclosed ${{ in {expr:?}"))?;
                let n = chars[i + 1..i + end].iter().collect();
                i += end + 1;
                n
            } else {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                chars[start..i].iter().collect()
            };
            if name.is_empty() {
                return Err(format!("lone $ in {expr:?}"));
            }
            tokens.push(Token::Var(name));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Number(chars[start..i].iter().collect()));
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if "({[".contains(c) {
            open.push(c);
            tokens.push(Token::Punct(c));
            i += 1;
        } else if ")}]".contains(c) {
            let want = match c {
                ')' => '(',
                '}' => '{',
                _ => '[',
            };
            if open.pop() != Some(want) {
                return Err(format!("unbalanced {c:?} in {expr:?}"));
            }
            tokens.push(Token::Punct(c));
            i += 1;
        } else if c == ',' {
            tokens.push(Token::Punct(c));
            i += 1;
        } else if "=!~<>+-*/%^@".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = if ["==", "!=", "=~", "!~", "<=", ">="].contains(&two.as_str()) {
                two
            } else if c == '!' || c == '~' {
                return Err(format!("bad operator at {:?} in {expr:?}", &two));
            } else {
                c.to_string()
            };
            i += op.len();
            tokens.push(Token::Op(op));
        } else {
            return Err(format!("unexpected {c:?} in {expr:?}"));
        }
    }
    if let Some(c) = open.pop() {
        return Err(format!("unclosed {c:?} in {expr:?}"));
    }
    Ok(tokens)
}

const KEYWORDS: [&str; 13] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names an expression selects: identifiers outside label
/// matchers, ranges and label lists that are not functions, aggregations
/// or keywords.
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let tokens = lex(expr)?;
    Ok(selectors(&tokens).into_iter().map(|s| s.name).collect())
}

/// A metric selector in an expression, and the parentheses around it.
struct Selector {
    name: String,
    /// Token index of its name.
    at: usize,
    /// Token indices of the enclosing `(`, outermost first.
    enclosing: Vec<usize>,
}

fn selectors(tokens: &[Token]) -> Vec<Selector> {
    let mut out = Vec::new();
    // Stack of open brackets: the bracket, whether a '(' holds label
    // names, and its token index.
    let mut stack: Vec<(char, bool, usize)> = Vec::new();
    let mut label_list_next = false;
    for (i, t) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1);
        match t {
            Token::Punct(c @ ('(' | '{' | '[')) => {
                stack.push((*c, *c == '(' && label_list_next, i));
                label_list_next = false;
            }
            Token::Punct(')' | '}' | ']') => {
                stack.pop();
            }
            Token::Ident(name) => {
                let lower = name.to_ascii_lowercase();
                let inside = stack.iter().any(|(c, labels, _)| *c != '(' || *labels);
                if LABEL_LISTS.contains(&lower.as_str()) {
                    label_list_next = true;
                    continue;
                }
                let function = matches!(next, Some(Token::Punct('(')))
                    || matches!(next, Some(Token::Ident(n)) if n == "by" || n == "without");
                if !inside && !function && !KEYWORDS.contains(&lower.as_str()) {
                    out.push(Selector {
                        name: name.clone(),
                        at: i,
                        enclosing: stack.iter().map(|(_, _, i)| *i).collect(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// The labels Prometheus adds to tell replicas of the exporter apart:
/// `instance` always, `pod` under the Prometheus Operator. The labels a
/// ServiceMonitor adds besides (`namespace`, `service`, `endpoint`,
/// `container`) are the same for every replica.
pub const REPLICA_LABELS: [&str; 2] = ["instance", "pod"];

/// What happens to a metric's per-replica series in an expression, when
/// several identical exporters are scraped.
#[derive(Debug, Clone, PartialEq)]
pub enum Replicas {
    /// Kept apart: the result has a series per replica.
    PerReplica,
    /// The first aggregation that merges the replicas picks one value among
    /// theirs (`max`, `min`, `avg`, `group`): identical replicas count once.
    Deduplicated(String),
    /// The first aggregation that merges the replicas adds them up or counts
    /// them (`sum`, `count`, ...): two replicas count twice.
    Combined(String),
}

/// Aggregations whose result is one of the values aggregated: over identical
/// replicas, the replicas' common value.
const DEDUPLICATING: [&str; 4] = ["max", "min", "avg", "group"];
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// For each metric selector of `expr` (in order), what the expression does
/// with its series of different replicas. An aggregation merges replicas
/// when it keeps none of [`REPLICA_LABELS`] (`without` lists them all, or
/// `by` lists none); `topk` and `bottomk` select series and merge nothing.
/// Other operators (arithmetic, `and`, `on`...) keep each side's labels,
/// so they do not change the answer.
pub fn replica_handling(expr: &str) -> Result<Vec<(String, Replicas)>, String> {
    let tokens = lex(expr)?;
    // The matching ')' of every '('.
    let mut close = BTreeMap::new();
    let mut open = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::Punct('(') => open.push(i),
            Token::Punct(')') => {
                if let Some(o) = open.pop() {
                    close.insert(o, i);
                }
            }
            _ => {}
        }
    }
    let label_list = |at: usize| -> Option<(Vec<String>, usize)> {
        if tokens.get(at) != Some(&Token::Punct('(')) {
            return None;
        }
        let end = *close.get(&at)?;
        let labels = tokens[at + 1..end]
            .iter()
            .filter_map(|t| match t {
                Token::Ident(l) => Some(l.clone()),
                _ => None,
            })
            .collect();
        Some((labels, end))
    };
    // The '(' that opens each aggregation's argument, and whether that
    // aggregation merges replicas.
    let mut merges: BTreeMap<usize, (String, bool)> = BTreeMap::new();
    for (i, t) in tokens.iter().enumerate() {
        let Token::Ident(op) = t else { continue };
        let op = op.to_ascii_lowercase();
        if !AGGREGATIONS.contains(&op.as_str()) {
            continue;
        }
        let grouping = |kw: &Token, at: usize| match kw {
            Token::Ident(k) if k == "by" || k == "without" => {
                label_list(at).map(|(labels, end)| (k.clone(), labels, end))
            }
            _ => None,
        };
        let (body, modifier) = match tokens.get(i + 1) {
            Some(kw @ Token::Ident(_)) => match grouping(kw, i + 2) {
                Some((k, labels, end)) => (end + 1, Some((k, labels))),
                None => continue,
            },
            Some(Token::Punct('(')) => {
                let end = *close.get(&(i + 1)).ok_or("unbalanced")?;
                let after = tokens
                    .get(end + 1)
                    .and_then(|kw| grouping(kw, end + 2))
                    .map(|(k, labels, _)| (k, labels));
                (i + 1, after)
            }
            _ => continue,
        };
        if tokens.get(body) != Some(&Token::Punct('(')) {
            return Err(format!("{op} without an argument in {expr:?}"));
        }
        let kept = |l: &str| match &modifier {
            None => false,
            Some((k, labels)) if k == "by" => labels.iter().any(|x| x == l),
            Some((_, labels)) => !labels.iter().any(|x| x == l),
        };
        let selects = op == "topk" || op == "bottomk";
        let merged = !selects && !REPLICA_LABELS.iter().any(|l| kept(l));
        merges.insert(body, (op, merged));
    }
    Ok(selectors(&tokens)
        .into_iter()
        .map(|s| {
            let first = s
                .enclosing
                .iter()
                .rev()
                .filter_map(|i| merges.get(i))
                .find(|(_, merged)| *merged);
            let how = match first {
                None => Replicas::PerReplica,
                Some((op, _)) if DEDUPLICATING.contains(&op.as_str()) => {
                    Replicas::Deduplicated(op.clone())
                }
                Some((op, _)) => Replicas::Combined(op.clone()),
            };
            (s.name, how)
        })
        .collect())
}

/// A metric selector as the dashboard linter sees it: its name, its label
/// matchers, the range after it (`[5m]`), and the function or aggregation
/// whose parentheses hold it directly.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorInfo {
    pub name: String,
    /// (label, operator, value as written, variables included).
    pub matchers: Vec<(String, String, String)>,
    pub range: Option<String>,
    pub directly_in: Option<String>,
}

impl SelectorInfo {
    /// Whether it has `label op "value"`.
    pub fn has(&self, label: &str, op: &str, value: &str) -> bool {
        self.matchers
            .iter()
            .any(|(l, o, v)| l == label && o == op && v == value)
    }
}

/// Every metric selector of `expr`, with its matchers, range and the call
/// that holds it (`rate` in `rate(m{a="b"}[5m])`; `max` in `max(m)` and in
/// `max without (a) (m)`; none at the top level or inside plain
/// parentheses).
pub fn selector_infos(expr: &str) -> Result<Vec<SelectorInfo>, String> {
    let tokens = lex(expr)?;
    let mut out = Vec::new();
    for s in selectors(&tokens) {
        let mut info = SelectorInfo {
            name: s.name,
            matchers: Vec::new(),
            range: None,
            directly_in: None,
        };
        // The call whose '(' is just before the selector: a function or
        // aggregation name before it, or `by (...)`/`without (...)` after
        // an aggregation's name.
        if let Some(open) = s.at.checked_sub(1) {
            if tokens[open] == Token::Punct('(') {
                match open.checked_sub(1).map(|j| &tokens[j]) {
                    Some(Token::Ident(f)) => info.directly_in = Some(f.to_ascii_lowercase()),
                    Some(Token::Punct(')')) => {
                        let mut depth = 0;
                        let mut j = open - 1;
                        loop {
                            match tokens[j] {
                                Token::Punct(')') => depth += 1,
                                Token::Punct('(') => depth -= 1,
                                _ => {}
                            }
                            if depth == 0 || j == 0 {
                                break;
                            }
                            j -= 1;
                        }
                        let kw = j.checked_sub(1).map(|k| &tokens[k]);
                        let f = j.checked_sub(2).map(|k| &tokens[k]);
                        if let (Some(Token::Ident(kw)), Some(Token::Ident(f))) = (kw, f) {
                            if kw == "by" || kw == "without" {
                                info.directly_in = Some(f.to_ascii_lowercase());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut k = s.at + 1;
        if tokens.get(k) == Some(&Token::Punct('{')) {
            k += 1;
            while k < tokens.len() && tokens[k] != Token::Punct('}') {
                if let (Some(Token::Ident(l)), Some(Token::Op(op)), Some(Token::Str(v))) =
                    (tokens.get(k), tokens.get(k + 1), tokens.get(k + 2))
                {
                    info.matchers.push((l.clone(), op.clone(), v.clone()));
                    k += 3;
                } else {
                    k += 1;
                }
            }
            k += 1;
        }
        if tokens.get(k) == Some(&Token::Punct('[')) {
            let mut range = String::new();
            k += 1;
            while k < tokens.len() && tokens[k] != Token::Punct(']') {
                match &tokens[k] {
                    Token::Var(v) => range.push_str(&format!("${v}")),
                    Token::Number(n) | Token::Ident(n) | Token::Op(n) | Token::Str(n) => {
                        range.push_str(n)
                    }
                    Token::Punct(c) => range.push(*c),
                }
                k += 1;
            }
            info.range = Some(range);
        }
        out.push(info);
    }
    Ok(out)
}

/// How the dashboard and the alert rules reduce a step or workflow metric
/// over replicas, the same everywhere: elapsed times take the smallest
/// value (the replica that saw the step or workflow end wins over one that
/// still counts up from stale data), everything else the largest (a
/// status reported by any replica counts; a counter's increase is largest
/// on the replica that has run longest).
pub fn replica_reduction(metric: &str) -> &'static str {
    match metric {
        "imagebuilder_workflow_step_duration_seconds"
        | "imagebuilder_workflow_execution_duration_seconds" => "min",
        _ => "max",
    }
}

/// Label matchers whose value is a variable: (label, operator, variable).
pub fn variable_matchers(expr: &str) -> Result<Vec<(String, String, String)>, String> {
    let tokens = lex(expr)?;
    let mut out = Vec::new();
    for w in tokens.windows(3) {
        if let [Token::Ident(label), Token::Op(op), Token::Str(value)] = w {
            if let Some(var) = value.strip_prefix('$') {
                let var = var.trim_start_matches('{').trim_end_matches('}');
                out.push((label.clone(), op.clone(), var.to_string()));
            }
        }
    }
    Ok(out)
}
