//! The `observe` example for real: its HTTP endpoints are fetched with raw
//! HTTP/1.1 requests over a `TcpStream` while its load runs, and what they
//! return is checked for form (valid JSON, well-formed Prometheus text) and
//! for sense (invariants of the figures, a counter that grows).
//!
//! The example is built once with `cargo build --example observe` (the same
//! cargo and target directory as the test run) and its binary is started
//! directly, so the test can stop it: killing `cargo run` would leave the
//! example itself running.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Building the example (the library is built already): seconds in
/// practice; the bound only catches a hang.
const BUILD_LIMIT: Duration = Duration::from_secs(300);
/// For anything the started example should do: generous, it only catches
/// a hang on a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

/// The example's binary, built once for all the tests here.
fn example_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let mut child = Command::new(env!("CARGO"))
            .args([
                "build",
                "--example",
                "observe",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cargo build");
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + BUILD_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for cargo") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cargo build --example observe did not finish within {BUILD_LIMIT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        assert!(status.success(), "cargo build --example observe failed:\n{err}");
        // The compiler-artifact message of the example carries its path.
        let line = out
            .lines()
            .find(|l| l.contains("\"compiler-artifact\"") && l.contains("\"executable\":\"") && l.contains("observe"))
            .unwrap_or_else(|| panic!("no executable in cargo's messages:\n{out}"));
        let message = match parse_json(line) {
            Ok(message) => message,
            Err(e) => panic!("cargo's message is not JSON ({e}): {line}"),
        };
        match message.get("executable") {
            Some(Json::Str(path)) => PathBuf::from(path),
            _ => panic!("no executable path in {line}"),
        }
    })
}

/// The running example; killed when dropped (also when a check panics).
struct Example {
    child: Child,
    lines: Receiver<String>,
    addr: SocketAddr,
    first_line: String,
}

impl Example {
    fn start(args: &[&str]) -> Example {
        let mut child = Command::new(example_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the observe example");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first_line = match lines.recv_timeout(LIMIT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no first line from the example ({e:?})");
            }
        };
        let mut example = Example {
            child,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            first_line,
        };
        let addr = example
            .first_line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "the first line is not `listening on http://ADDR`: {:?}",
                    example.first_line
                )
            });
        example.addr = addr
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("bad address {addr:?} in the first line: {e}"));
        assert!(example.addr.ip().is_loopback(), "not on loopback: {}", example.addr);
        assert_ne!(example.addr.port(), 0, "port 0 printed instead of the bound port");
        example
    }

    /// Waits for the example to exit by itself; returns (success, the
    /// stdout lines after the first).
    fn wait(mut self) -> (bool, Vec<String>) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the example") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the example did not stop by itself within {LIMIT:?}"
            );
            thread::sleep(Duration::from_millis(20));
        };
        let mut lines = Vec::new();
        loop {
            match self.lines.recv_timeout(LIMIT) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stdout not closed after the example exited"),
            }
        }
        (status.success(), lines)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A response: status code, headers (names lowercased), body.
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// A raw HTTP/1.1 GET.
fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, LIMIT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.set_write_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: stealpool-test\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read the response to {path}: {e}"));
    let raw = String::from_utf8(raw).unwrap_or_else(|_| panic!("the response to {path} is not UTF-8"));
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in the response to {path}: {raw:?}"));
    let mut head_lines = head.split("\r\n");
    let status_line = head_lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {status_line:?}");
    let status = parts
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status code in {status_line:?}"));
    let mut headers = HashMap::new();
    for line in head_lines {
        let (name, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad header line {line:?}"));
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in the response to {path}"));
    assert_eq!(length, body.len(), "Content-Length of the response to {path}");
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get_ok(addr: SocketAddr, path: &str) -> Response {
    let response = get(addr, path);
    assert_eq!(response.status, 200, "GET {path}:\n{}", response.body);
    response
}

// ---- a minimal JSON parser ----

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The number under `key`, which must be a non-negative integer.
    fn count(&self, key: &str) -> u64 {
        match self.get(key) {
            Some(Json::Num(n)) if *n >= 0.0 && n.fract() == 0.0 => *n as u64,
            other => panic!("{key:?} is not a count: {other:?}"),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let value = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing characters at {}", p.i));
    }
    Ok(value)
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 64 {
            return Err("nested too deep".into());
        }
        self.ws();
        match self.peek().ok_or("unexpected end")? {
            b'{' => {
                self.i += 1;
                let mut fields: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    if fields.iter().any(|(k, _)| *k == key) {
                        return Err(format!("duplicate key {key:?}"));
                    }
                    self.ws();
                    self.expect(b':')?;
                    let value = self.value(depth + 1)?;
                    fields.push((key, value));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("expected ',' or '}}' at {}", self.i)),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at {}", self.i)),
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            _ => self.number(),
        }
    }

    fn word(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(value)
        } else {
            Err(format!("bad literal at {}", self.i))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = self.digits();
        if n == 0 || (n > 1 && self.s[int_start] == b'0') {
            return Err(format!("bad number at {start}"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(format!("bad fraction at {start}"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(format!("bad exponent at {start}"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
        text.parse().map(Json::Num).map_err(|e| format!("{text}: {e}"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let c = self.peek().ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|_| "string not UTF-8".to_string()),
                b'\\' => {
                    let e = self.peek().ok_or("unterminated escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            let code = u32::from_str_radix(std::str::from_utf8(hex).unwrap_or("x"), 16)
                                .map_err(|_| "bad \\u escape")?;
                            self.i += 4;
                            // Surrogates are not needed here; refuse them.
                            char::from_u32(code).ok_or("surrogate in \\u escape")?
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(format!("control character in string at {}", self.i)),
                _ => out.push(c),
            }
        }
    }
}

#[test]
fn json_parser_accepts_json_and_refuses_the_rest() {
    let v = parse_json(r#" {"a": [1, -2.5e3, true, null, "x\"\u00e9"], "b": {}} "#).unwrap();
    assert_eq!(
        v.get("a").map(|a| matches!(a, Json::Arr(items) if items.len() == 5)),
        Some(true)
    );
    for bad in [
        "{",
        "{\"a\":1,}",
        "[1 2]",
        "01",
        "1.",
        "{\"a\":1}x",
        "\"\n\"",
        "{\"a\":1,\"a\":2}",
        "",
    ] {
        assert!(parse_json(bad).is_err(), "accepted {bad:?}");
    }
}

// ---- a Prometheus text format checker ----

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Option<f64> {
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
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
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
struct Exposition {
    types: HashMap<String, String>,
    samples: HashMap<String, f64>,
}

/// Checks the text exposition format line by line: `# HELP name text` and
/// `# TYPE name type` once per family, both before its samples; samples
/// `name value` or `name{labels} value` (optionally a timestamp), each
/// family's lines in one group, no series twice, counters not negative.
fn check_exposition(text: &str) -> Exposition {
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
fn exposition_checker_refuses_malformed_text() {
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

// ---- the example ----

/// The `Stats` fields, all counts.
const STAT_KEYS: [&str; 14] = [
    "capacity",
    "max_capacity",
    "live_workers",
    "busy_workers",
    "sleeping_workers",
    "queued",
    "submitted",
    "completed",
    "panicked",
    "stolen",
    "blocked_submitters",
    "wait_count",
    "rejected",
    "live_states",
];

const STATES: [&str; 5] = ["not_started", "busy", "idle", "sleeping", "suspended"];

#[test]
fn serves_stats_json_metrics_and_workers_while_the_load_runs() {
    // Long enough never to end on its own during the test; killed at the end.
    let example = Example::start(&["--seconds", "120"]);
    let addr = example.addr;

    // /stats: `name: value` lines.
    let text = get_ok(addr, "/stats");
    assert!(text.headers["content-type"].starts_with("text/plain"));
    let fields: HashMap<&str, f64> = text
        .body
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("/stats line {line:?}"));
            (
                name,
                value.parse().unwrap_or_else(|_| panic!("/stats value in {line:?}")),
            )
        })
        .collect();
    for key in STAT_KEYS
        .iter()
        .chain(&["wait_time_seconds", "busy_time_seconds", "queue_delay_p99_seconds"])
    {
        assert!(fields.contains_key(key), "/stats lacks {key}:\n{}", text.body);
    }

    // /stats.json: valid JSON, every figure a number, sane figures.
    let json = get_ok(addr, "/stats.json");
    assert!(json.headers["content-type"].starts_with("application/json"));
    let stats = parse_json(&json.body).unwrap_or_else(|e| panic!("/stats.json is not JSON ({e}):\n{}", json.body));
    let count = |key: &str| stats.count(key);
    for key in STAT_KEYS {
        count(key);
    }
    for key in [
        "wait_time_seconds",
        "busy_time_seconds",
        "queue_delay_p50_seconds",
        "queue_delay_p99_seconds",
    ] {
        assert!(
            matches!(stats.get(key), Some(Json::Num(t)) if *t >= 0.0),
            "{key} in {}",
            json.body
        );
    }
    // The pool measures queue delay: p50 <= p99 <= max, a count that grows.
    let delay = |key: &str| match stats.get(key) {
        Some(Json::Num(t)) => *t,
        other => panic!("{key}: {other:?}"),
    };
    assert!(delay("queue_delay_p50_seconds") <= delay("queue_delay_p99_seconds"));
    assert!(delay("queue_delay_p99_seconds") <= delay("queue_delay_max_seconds"));
    // The thread hooks counted at least the live workers' starts.
    assert!(stats.count("threads_started") >= count("live_workers"), "{}", json.body);
    let max = count("max_capacity") as usize;
    assert!(
        (1..=max as u64).contains(&count("capacity")),
        "capacity out of range:\n{}",
        json.body
    );
    assert!(count("busy_workers") <= count("live_workers"), "{}", json.body);
    assert!(count("live_workers") <= max as u64, "{}", json.body);
    assert!(count("completed") <= count("submitted"), "{}", json.body);
    let Some(Json::Arr(workers)) = stats.get("workers") else {
        panic!("no workers array in /stats.json:\n{}", json.body);
    };
    // One entry per slot that has or had a thread (threads start on demand).
    assert!(workers.len() <= max, "more entries than slots:\n{}", json.body);
    for (i, worker) in workers.iter().enumerate() {
        assert_eq!(worker.count("index"), i as u64);
        for key in ["tasks_run", "steals", "parks"] {
            worker.count(key);
        }
        assert!(
            matches!(worker.get("busy_seconds"), Some(Json::Num(t)) if *t >= 0.0),
            "worker {i}: {worker:?}"
        );
        assert!(
            matches!(worker.get("state"), Some(Json::Str(s)) if STATES.contains(&s.as_str())),
            "worker {i}: {worker:?}"
        );
    }

    // /metrics: well-formed exposition, the expected families, per-worker
    // series, a completed counter that grows while the load runs.
    let metrics = get_ok(addr, "/metrics");
    assert!(metrics.headers["content-type"].starts_with("application/openmetrics-text"));
    let first = check_exposition(&metrics.body);
    for (name, kind) in [
        ("stealpool_capacity", "gauge"),
        ("stealpool_live_workers", "gauge"),
        ("stealpool_busy_workers", "gauge"),
        ("stealpool_queued_tasks", "gauge"),
        ("stealpool_tasks_submitted", "counter"),
        ("stealpool_tasks_completed", "counter"),
        ("stealpool_steals", "counter"),
        ("stealpool_busy_seconds", "counter"),
        ("stealpool_queue_delay_tasks", "counter"),
        ("stealpool_queue_delay_p50_seconds", "gauge"),
        ("stealpool_queue_delay_p99_seconds", "gauge"),
        ("stealpool_worker_tasks_run", "counter"),
        ("stealpool_worker_busy_seconds", "counter"),
        ("stealpool_worker_state", "gauge"),
    ] {
        assert_eq!(
            first.types.get(name).map(String::as_str),
            Some(kind),
            "family {name}:\n{}",
            metrics.body
        );
    }
    // Series for the slots that have or had a thread: 0..listed, no gaps.
    let series = |i: usize| format!("stealpool_worker_tasks_run_total{{worker=\"{i}\"}}");
    let listed = (0..max).take_while(|&i| first.samples.contains_key(&series(i))).count();
    assert!(
        (listed..max).all(|i| !first.samples.contains_key(&series(i))),
        "gaps in the per-worker series:\n{}",
        metrics.body
    );
    for i in 0..listed {
        let busy = format!("stealpool_worker_busy_seconds_total{{worker=\"{i}\"}}");
        assert!(first.samples.contains_key(&busy), "no {busy}:\n{}", metrics.body);
        let in_one_state: f64 = STATES
            .iter()
            .map(|s| first.samples[&format!("stealpool_worker_state{{worker=\"{i}\",state=\"{s}\"}}")])
            .sum();
        assert_eq!(in_one_state, 1.0, "worker {i} is in {in_one_state} states");
    }
    let completed = |e: &Exposition| e.samples["stealpool_tasks_completed_total"];
    let deadline = Instant::now() + LIMIT;
    loop {
        thread::sleep(Duration::from_millis(300));
        let again = get_ok(addr, "/metrics");
        let second = check_exposition(&again.body);
        if completed(&second) > completed(&first) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stealpool_tasks_completed_total did not grow past {} within {LIMIT:?}",
            completed(&first)
        );
    }

    // /workers: a header and one row per slot that has or had a thread.
    let table = get_ok(addr, "/workers");
    let rows: Vec<&str> = table
        .body
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(table
        .body
        .lines()
        .any(|l| l.contains("worker") && l.contains("state") && l.contains("tasks_run") && l.contains("busy_ms")));
    assert!((1..=max).contains(&rows.len()), "/workers rows:\n{}", table.body);
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells.len(), 6, "row {row:?}");
        assert_eq!(cells[0], i.to_string());
        assert!(STATES.contains(&cells[1]), "row {row:?}");
        assert!(cells[2..].iter().all(|c| c.parse::<u64>().is_ok()), "row {row:?}");
    }

    // Anything else: 404.
    for path in ["/nope", "/stats/x", "/metricsx"] {
        assert_eq!(get(addr, path).status, 404, "GET {path}");
    }
    drop(example);
}

#[test]
fn stops_by_itself_after_the_given_seconds() {
    let example = Example::start(&["--seconds", "1"]);
    let (ok, lines) = example.wait();
    assert!(ok, "the example failed:\n{}", lines.join("\n"));
    let last = lines.last().map(String::as_str).unwrap_or("");
    assert!(
        last.starts_with("done: "),
        "no done line at the end:\n{}",
        lines.join("\n")
    );
}
