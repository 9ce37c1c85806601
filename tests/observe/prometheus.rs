//! A Prometheus text format checker.

use std::collections::{HashMap, HashSet};

pub(crate) fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => s.parse().ok(),
        _ => None,
    }
}

/// Label names and values, in order.
type Labels = Vec<(String, String)>;

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest of `s`.
pub(crate) fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("no '{'")?;
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("unterminated escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

/// A checked exposition: each family's type, and each series' value, keyed
/// `name{labels}` exactly as written.
pub(crate) struct Exposition {
    pub(crate) types: HashMap<String, String>,
    pub(crate) samples: HashMap<String, f64>,
}

/// Checks the text exposition format line by line: `# HELP name text` and
/// `# TYPE name type` once per family, both before its samples; samples
/// `name value` or `name{labels} value` (optionally a timestamp), each
/// family's lines in one group, no series twice, counters not negative.
pub(crate) fn check_exposition(text: &str) -> Exposition {
    assert!(text.ends_with('\n'), "the exposition does not end with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut samples = HashMap::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut eof = false;
    // A new family starts: the previous one is closed for good.
    let mut enter = |family: &str, current: &mut Option<String>, line: &str| {
        if current.as_deref() != Some(family) {
            assert!(
                !done.contains(family),
                "family {family} is split in two groups, at {line:?}"
            );
            if let Some(previous) = current.take() {
                done.insert(previous);
            }
            *current = Some(family.to_string());
        }
    };
    for line in text.lines() {
        assert!(!line.is_empty(), "an empty line in the exposition");
        assert!(!eof, "a line after # EOF: {line:?}");
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match words.next() {
                Some("HELP") => {
                    let name = words.next().unwrap_or("");
                    assert!(is_metric_name(name), "bad metric name in {line:?}");
                    enter(name, &mut current, line);
                    assert!(helps.insert(name.to_string()), "HELP twice for {name}");
                }
                Some("TYPE") => {
                    let name = words.next().unwrap_or("");
                    assert!(is_metric_name(name), "bad metric name in {line:?}");
                    let kind = words.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "bad type in {line:?}"
                    );
                    enter(name, &mut current, line);
                    assert!(
                        types.insert(name.to_string(), kind.to_string()).is_none(),
                        "TYPE twice for {name}"
                    );
                }
                Some("EOF") => {
                    // OpenMetrics: the last line, alone.
                    assert!(text.ends_with("# EOF\n"), "# EOF before the end: {line:?}");
                    eof = true;
                }
                _ => {} // a plain comment (or an OpenMetrics # UNIT)
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value in {line:?}"));
        let name = &line[..name_end];
        assert!(is_metric_name(name), "bad metric name in {line:?}");
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).unwrap_or_else(|e| panic!("{e} in {line:?}"))
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value in {line:?}"))
            .split(' ');
        let value = fields
            .next()
            .and_then(parse_value)
            .unwrap_or_else(|| panic!("bad value in {line:?}"));
        if let Some(timestamp) = fields.next() {
            assert!(timestamp.parse::<i64>().is_ok(), "bad timestamp in {line:?}");
        }
        assert!(fields.next().is_none(), "trailing fields in {line:?}");
        let family = [
            name,
            name.trim_end_matches("_bucket"),
            name.trim_end_matches("_sum"),
            name.trim_end_matches("_count"),
            // OpenMetrics names a counter's family without its `_total`.
            name.trim_end_matches("_total"),
        ]
        .into_iter()
        .find(|f| types.contains_key(*f))
        .unwrap_or_else(|| panic!("sample before (or without) its # TYPE: {line:?}"));
        assert!(
            helps.contains(family),
            "sample before (or without) its # HELP: {line:?}"
        );
        enter(family, &mut current, line);
        if types[family] == "counter" {
            assert!(value >= 0.0, "negative counter: {line:?}");
        }
        let key = if labels.is_empty() {
            name.to_string()
        } else {
            let labels: Vec<String> = labels.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
            format!("{name}{{{}}}", labels.join(","))
        };
        assert!(samples.insert(key, value).is_none(), "series twice: {line:?}");
    }
    Exposition { types, samples }
}

#[test]
pub(crate) fn exposition_checker_refuses_malformed_text() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total{w=\"0\"} 2.5\n";
    assert_eq!(check_exposition(good).samples.len(), 2);
    for bad in [
        "a 1\n",                                                                              // no TYPE
        "# TYPE a gauge\na 1\n",                                                              // no HELP
        "# HELP a A.\n# TYPE a gauge\na one\n",                                               // bad value
        "# HELP a A.\n# TYPE a gauge\na{w=0} 1\n",                                            // unquoted label
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",                                            // series twice
        "# HELP a A.\n# TYPE a counter\na -1\n",                                              // negative counter
        "# HELP a A.\n# TYPE a gauge\na 1\n# HELP b B.\n# TYPE b gauge\nb 1\na{x=\"1\"} 1\n", // split family
    ] {
        let result = std::panic::catch_unwind(|| check_exposition(bad));
        assert!(result.is_err(), "accepted {bad:?}");
    }
}
