//! Loading: YAML text → [`WorkflowSpec`] (strict serde) → checked [`Workflow`].
//!
//! Every problem is collected, not just the first, and each names the file, line and column
//! and what was expected. Nothing here runs a node.

use super::error::{LoadError, LoadIssue};
use super::expr::{Expr, Templates, is_global};
use super::graph::*;
use super::locate::{Seg, locate};
use super::spec::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The most tasks a step may run at once.
pub const MAX_CONCURRENCY: usize = 10_000;

/// Loads a workflow file.
pub fn load_file(path: &Path) -> Result<Workflow, LoadError> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| LoadError {
        issues: vec![LoadIssue {
            file: display.clone(),
            line: None,
            col: None,
            path: String::new(),
            message: format!("cannot read the workflow file: {e}"),
        }],
    })?;
    let dir = path.parent().map(Path::to_path_buf);
    let mut wf = load_str(&source, &display)?;
    wf.dir = dir;
    Ok(wf)
}

/// Loads a workflow from text; `origin` names it in errors (a path, or `builtin:NAME`).
pub fn load_str(source: &str, origin: &str) -> Result<Workflow, LoadError> {
    if let Some((line, col)) = super::nesting::too_deep(source) {
        return Err(LoadError {
            issues: vec![LoadIssue {
                file: origin.to_string(),
                line: Some(line),
                col: Some(col),
                path: String::new(),
                message: format!(
                    "flow collections ([...], {{...}}) nest deeper than {} levels",
                    super::nesting::MAX_FLOW_DEPTH
                ),
            }],
        });
    }
    let spec: WorkflowSpec = serde_yaml::from_str(source).map_err(|e| {
        let mut issue = yaml_issue(&e, origin);
        explain_unknown_key(&mut issue, source);
        LoadError {
            issues: vec![issue],
        }
    })?;
    let mut c = Compiler {
        source,
        origin,
        issues: Vec::new(),
    };
    let wf = c.compile(spec, source);
    if c.issues.is_empty()
        && let Some(wf) = wf
    {
        return Ok(wf);
    }
    c.issues
        .sort_by_key(|i| (i.line.unwrap_or(usize::MAX), i.col.unwrap_or(0)));
    Err(LoadError { issues: c.issues })
}

fn yaml_issue(err: &serde_yaml::Error, origin: &str) -> LoadIssue {
    let mut message = err.to_string();
    // serde's message repeats the position we print in front; keep the words only.
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    let (path, message) = match message.split_once(": ") {
        Some((p, m)) if !p.contains(' ') && !p.is_empty() => (p.to_string(), m.to_string()),
        _ => (String::new(), message),
    };
    let loc = err.location();
    LoadIssue {
        file: origin.to_string(),
        line: loc.as_ref().map(|l| l.line()),
        col: loc.as_ref().map(|l| l.column()),
        path,
        message,
    }
}

/// The keys every node takes, whatever its kind.
const COMMON_NODE_KEYS: [&str; 5] = ["kind", "description", "for_each", "retry", "timeout_s"];

/// Rewrites serde's "unknown field `x`, expected one of …" for a node: the keys of that node's
/// kind only, and the closest one when the unknown key looks like a typo of it.
fn explain_unknown_key(issue: &mut LoadIssue, source: &str) {
    let Some(rest) = issue.message.strip_prefix("unknown field `") else {
        return;
    };
    let Some(key) = rest.split('`').next().map(str::to_string) else {
        return;
    };
    let Some(node) = issue.path.strip_prefix("nodes.") else {
        return;
    };
    let kind = serde_yaml::from_str::<serde_yaml::Value>(source)
        .ok()
        .and_then(|doc| {
            doc.get("nodes")?
                .get(node)?
                .get("kind")?
                .as_str()
                .map(str::to_string)
        })
        .and_then(|k| serde_yaml::from_str::<NodeKindName>(&k).ok());
    let mut keys: Vec<&str> = COMMON_NODE_KEYS.to_vec();
    let what = match kind {
        Some(kind) => {
            keys.extend(allowed_keys(kind));
            format!("a node of kind `{}`", kind.as_str())
        }
        None => "a node".to_string(),
    };
    let closest = keys
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min();
    let mut message = format!(
        "unknown key `{key}` for {what} (its keys: {})",
        keys.join(", ")
    );
    if let Some((_, k)) = closest {
        message.push_str(&format!("; did you mean `{k}`?"));
    }
    issue.message = message;
}

/// Levenshtein distance between two short words.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Builds a path like `nodes.fan.set.count` / `edges[2].to` and its segments together.
#[derive(Clone, Default)]
struct At(Vec<Seg>);

impl At {
    fn key(&self, k: &str) -> At {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        At(v)
    }
    fn idx(&self, i: usize) -> At {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        At(v)
    }
    fn render(&self) -> String {
        let mut s = String::new();
        for seg in &self.0 {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

fn root() -> At {
    At::default()
}

struct Compiler<'a> {
    source: &'a str,
    origin: &'a str,
    issues: Vec<LoadIssue>,
}

fn valid_workflow_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_node_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn valid_channel_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Which optional keys each node kind takes (the common ones are always allowed).
fn allowed_keys(kind: NodeKindName) -> &'static [&'static str] {
    match kind {
        NodeKindName::Transform => &["set"],
        NodeKindName::Llm => &[
            "role", "system", "prompt", "output", "tools", "writes", "key",
        ],
        NodeKindName::Tool => &["tool", "args", "writes", "key"],
        NodeKindName::Interrupt => &["prompt", "schema", "writes"],
        NodeKindName::Workflow => &["workflow", "input", "writes", "key"],
        NodeKindName::Builtin => &["name", "with", "writes", "key"],
    }
}

fn present_keys(n: &NodeSpec) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let pairs: [(&'static str, bool); 13] = [
        ("set", n.set.is_some()),
        ("role", n.role.is_some()),
        ("system", n.system.is_some()),
        ("prompt", n.prompt.is_some()),
        ("output", n.output.is_some()),
        ("tools", n.tools.is_some()),
        ("tool", n.tool.is_some()),
        ("args", n.args.is_some()),
        ("schema", n.schema.is_some()),
        ("workflow", n.workflow.is_some()),
        ("input", n.input.is_some()),
        ("name", n.name.is_some()),
        ("with", n.with.is_some()),
    ];
    for (k, present) in pairs {
        if present {
            keys.push(k);
        }
    }
    if n.writes.is_some() {
        keys.push("writes");
    }
    if n.key.is_some() {
        keys.push("key");
    }
    keys
}

impl Compiler<'_> {
    fn issue(&mut self, at: &At, message: impl Into<String>) {
        let pos = locate(self.source, &at.0);
        self.issues.push(LoadIssue {
            file: self.origin.to_string(),
            line: pos.map(|p| p.line),
            col: pos.map(|p| p.col),
            path: at.render(),
            message: message.into(),
        });
    }

    fn schema(&mut self, at: &At, source: &Value) -> Option<Schema> {
        match Schema::compile(source) {
            Ok(s) => Some(s),
            Err(e) => {
                self.issue(at, e);
                None
            }
        }
    }

    /// Compiles an expression and checks the names it reads.
    fn expr(
        &mut self,
        at: &At,
        src: &ExprSource,
        channels: &BTreeMap<String, Channel>,
        in_for_each: bool,
    ) -> Option<Expr> {
        match Expr::compile(&src.0) {
            Ok(e) => {
                let names = e.referenced_names();
                self.check_names(at, &src.0, &names, channels, in_for_each);
                Some(e)
            }
            Err(err) => {
                self.issue(
                    at,
                    format!("expression `{}` does not compile: {err}", src.0),
                );
                None
            }
        }
    }

    fn check_names(
        &mut self,
        at: &At,
        text: &str,
        names: &[String],
        channels: &BTreeMap<String, Channel>,
        in_for_each: bool,
    ) {
        for name in names {
            let (top, rest) = match name.split_once('.') {
                Some((t, r)) => (t, Some(r)),
                None => (name.as_str(), None),
            };
            match top {
                "input" | "run" => {}
                "state" => {
                    if let Some(ch) = rest.map(|r| r.split('.').next().unwrap_or(r))
                        && !channels.contains_key(ch) {
                            let known: Vec<&str> = channels.keys().map(String::as_str).collect();
                            self.issue(
                                at,
                                format!("`{text}` reads `state.{ch}`, but there is no channel `{ch}` (channels: {})", known.join(", ")),
                            );
                        }
                }
                "item" | "index" if in_for_each => {}
                "item" | "index" => self.issue(
                    at,
                    format!("`{text}` uses `{top}`, which exists only in a node with `for_each`"),
                ),
                other if is_global(other) => {}
                other => self.issue(
                    at,
                    format!("`{text}` uses the unknown name `{other}` (expected input, state, run, item or index)"),
                ),
            }
        }
    }

    fn template(
        &mut self,
        templates: &mut Templates,
        at: &At,
        src: &str,
        channels: &BTreeMap<String, Channel>,
        in_for_each: bool,
    ) -> Option<String> {
        let key = at.render();
        match templates.add(&key, src) {
            Ok(()) => {
                let names = templates.referenced_names(&key);
                self.check_names(at, src, &names, channels, in_for_each);
                Some(key)
            }
            Err(err) => {
                self.issue(at, format!("template does not compile: {err}"));
                None
            }
        }
    }

    fn compile(&mut self, spec: WorkflowSpec, source: &str) -> Option<Workflow> {
        if !valid_workflow_name(&spec.name) {
            self.issue(
                &root().key("name"),
                format!(
                    "`{}` is not a valid workflow name: expected [a-z0-9][a-z0-9-]*",
                    spec.name
                ),
            );
        }

        let input_schema = spec.input.as_ref().and_then(|s| {
            let at = root().key("input");
            if let Some(t) = s.get("type")
                && t != "object"
            {
                self.issue(
                    &at,
                    format!("the input schema must describe an object, not `{t}`"),
                );
            }
            self.schema(&at, s)
        });

        let channels = self.channels(&spec.channels);
        let mut templates = Templates::new();
        let nodes = self.nodes(&spec, &channels, &mut templates);
        let (edges, entry) = self.edges(&spec, &nodes, &channels);
        self.check_reachable(&spec, &edges, &entry);

        let output = spec.output.as_ref().and_then(|o| {
            let at = root().key("output");
            match o {
                OutputSpec::Expr(e) => self.expr(&at, e, &channels, false).map(Output::Expr),
                OutputSpec::Map(m) => {
                    let mut items = Vec::new();
                    for (k, e) in m {
                        items.push((k.clone(), self.expr(&at.key(k), e, &channels, false)?));
                    }
                    Some(Output::Map(items))
                }
            }
        });

        let limits = self.limits(&spec.limits);
        if !self.issues.is_empty() {
            return None;
        }
        Some(Workflow {
            name: spec.name,
            description: spec.description,
            source: Arc::from(source),
            origin: self.origin.to_string(),
            dir: None,
            input_schema,
            channels,
            nodes,
            outgoing: Workflow::index_edges(&edges),
            edges,
            entry,
            output,
            limits,
            templates,
        })
    }

    fn channels(&mut self, specs: &BTreeMap<String, ChannelSpec>) -> BTreeMap<String, Channel> {
        let mut out = BTreeMap::new();
        for (name, c) in specs {
            let at = root().key("channels").key(name);
            if !valid_channel_name(name) {
                self.issue(&at, format!("`{name}` is not a valid channel name: expected letters, digits and `_`, not starting with a digit"));
            }
            let schema = c
                .schema
                .as_ref()
                .and_then(|s| self.schema(&at.key("schema"), s));
            let default = match &c.default {
                Some(v) => v.clone(),
                None => match c.reducer {
                    Reducer::Replace => Value::Null,
                    Reducer::Append | Reducer::Union => Value::Array(vec![]),
                    Reducer::Merge => Value::Object(Default::default()),
                    Reducer::Sum => Value::from(0),
                },
            };
            let shape_ok = match c.reducer {
                Reducer::Replace => true,
                Reducer::Append | Reducer::Union => default.is_array(),
                Reducer::Merge => default.is_object(),
                Reducer::Sum => default.is_number(),
            };
            if !shape_ok {
                self.issue(
                    &at.key("default"),
                    format!(
                        "a `{}` channel needs a default that is {}",
                        c.reducer.as_str(),
                        match c.reducer {
                            Reducer::Append | Reducer::Union => "a list",
                            Reducer::Merge => "an object",
                            _ => "a number",
                        }
                    ),
                );
            }
            if let (Some(schema), Some(d)) = (&schema, &c.default) {
                let errors = schema.errors(d);
                if !errors.is_empty() {
                    self.issue(
                        &at.key("default"),
                        format!(
                            "the default does not match the channel's schema: {}",
                            errors.join("; ")
                        ),
                    );
                }
            }
            out.insert(
                name.clone(),
                Channel {
                    name: name.clone(),
                    reducer: c.reducer,
                    schema,
                    default,
                },
            );
        }
        out
    }

    fn retry(
        &mut self,
        at: &At,
        spec: Option<&RetrySpec>,
        fallback: &RetrySpec,
        default_attempts: u32,
    ) -> RetryPolicy {
        let pick = |f: fn(&RetrySpec) -> Option<u64>| spec.and_then(f).or_else(|| f(fallback));
        let max_attempts = spec
            .and_then(|s| s.max_attempts)
            .or(fallback.max_attempts)
            .unwrap_or(default_attempts);
        if max_attempts == 0 {
            self.issue(&at.key("max_attempts"), "max_attempts must be at least 1");
        }
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            backoff: Duration::from_millis(pick(|s| s.backoff_ms).unwrap_or(200)),
            max_backoff: Duration::from_millis(pick(|s| s.max_backoff_ms).unwrap_or(10_000)),
        }
    }

    fn seconds(&mut self, at: &At, v: Option<f64>) -> Option<Duration> {
        let s = v?;
        if !(s > 0.0 && s.is_finite() && s < 1e9) {
            self.issue(
                at,
                format!("expected a positive number of seconds below 1e9, got {s:?}"),
            );
            return None;
        }
        Some(Duration::from_secs_f64(s))
    }

    fn limits(&mut self, l: &LimitsSpec) -> Limits {
        let at = root().key("limits");
        if l.max_steps == Some(0) {
            self.issue(&at.key("max_steps"), "max_steps must be at least 1");
        }
        if l.concurrency == Some(0) {
            self.issue(&at.key("concurrency"), "concurrency must be at least 1");
        }
        if l.concurrency.is_some_and(|c| c > MAX_CONCURRENCY) {
            self.issue(
                &at.key("concurrency"),
                format!("concurrency must be at most {MAX_CONCURRENCY}"),
            );
        }
        if l.max_llm_calls == Some(0) {
            self.issue(&at.key("max_llm_calls"), "max_llm_calls must be at least 1");
        }
        if l.max_tokens == Some(0) {
            self.issue(&at.key("max_tokens"), "max_tokens must be at least 1");
        }
        if l.max_cost_usd.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            self.issue(
                &at.key("max_cost_usd"),
                "max_cost_usd must be a positive number of dollars",
            );
        }
        Limits {
            max_steps: l.max_steps.unwrap_or(100).max(1),
            concurrency: l.concurrency.unwrap_or(8).clamp(1, MAX_CONCURRENCY),
            timeout: self.seconds(&at.key("timeout_s"), l.timeout_s),
            budget: Budget {
                max_tokens: l.max_tokens,
                max_cost_usd: l.max_cost_usd,
                max_llm_calls: l.max_llm_calls,
            },
        }
    }

    fn writes_channel(
        &mut self,
        at: &At,
        node: &NodeSpec,
        ch: &str,
        channels: &BTreeMap<String, Channel>,
    ) {
        match channels.get(ch) {
            None => {
                let known: Vec<&str> = channels.keys().map(String::as_str).collect();
                self.issue(at, format!("writes the undeclared channel `{ch}` (channels: {})", known.join(", ")));
            }
            Some(c) if node.for_each.is_some() && c.reducer == Reducer::Replace => self.issue(
                at,
                format!("a `for_each` node cannot write the `replace` channel `{ch}`: its tasks would overwrite each other; use an `append`, `merge`, `sum` or `union` channel"),
            ),
            Some(_) => {}
        }
    }

    fn expr_map(
        &mut self,
        at: &At,
        m: &BTreeMap<String, ExprSource>,
        channels: &BTreeMap<String, Channel>,
        fe: bool,
    ) -> Vec<(String, Expr)> {
        m.iter()
            .filter_map(|(k, e)| Some((k.clone(), self.expr(&at.key(k), e, channels, fe)?)))
            .collect()
    }

    fn nodes(
        &mut self,
        spec: &WorkflowSpec,
        channels: &BTreeMap<String, Channel>,
        templates: &mut Templates,
    ) -> BTreeMap<String, Node> {
        let default_retry = spec.retry.clone().unwrap_or_default();
        let mut out = BTreeMap::new();
        for (name, n) in &spec.nodes {
            let at = root().key("nodes").key(name);
            if name == "START" || name == "END" {
                self.issue(
                    &at,
                    format!("`{name}` is reserved for edges and cannot name a node"),
                );
                continue;
            }
            if !valid_node_name(name) {
                self.issue(
                    &at,
                    format!("`{name}` is not a valid node name: expected [a-z0-9_-]+"),
                );
            }
            let allowed = allowed_keys(n.kind);
            let mut bad_keys = false;
            for key in present_keys(n) {
                if !allowed.contains(&key) {
                    bad_keys = true;
                    self.issue(
                        &at.key(key),
                        format!("`{key}` is not a key of a `{}` node (it takes: {}, and the common kind, description, for_each, retry, timeout_s)", n.kind.as_str(), allowed.join(", ")),
                    );
                }
            }
            if bad_keys {
                continue;
            }
            let fe = n.for_each.is_some();
            let for_each = n
                .for_each
                .as_ref()
                .and_then(|e| self.expr(&at.key("for_each"), e, channels, false));
            let require = |c: &mut Self, key: &str, present: bool| {
                if !present {
                    c.issue(&at, format!("a `{}` node needs `{key}`", n.kind.as_str()));
                }
                present
            };
            let mut writes = Vec::new();
            if let Some(w) = &n.writes {
                self.writes_channel(&at.key("writes"), n, w, channels);
                writes.push(w.clone());
            }
            let key = n.key.as_ref().and_then(|k| {
                let merge = n
                    .writes
                    .as_ref()
                    .and_then(|w| channels.get(w))
                    .map(|c| c.reducer == Reducer::Merge);
                match merge {
                    Some(true) => self.expr(&at.key("key"), k, channels, fe),
                    Some(false) => {
                        self.issue(
                            &at.key("key"),
                            format!(
                                "`key` needs a `merge` channel in `writes`; `{}` is not one",
                                n.writes.as_deref().unwrap_or_default()
                            ),
                        );
                        None
                    }
                    None => {
                        if n.writes.is_none() {
                            self.issue(&at.key("key"), "`key` needs `writes` (a `merge` channel)");
                        }
                        None
                    }
                }
            });
            let kind = match n.kind {
                NodeKindName::Transform => {
                    if !require(self, "set", n.set.is_some()) {
                        continue;
                    }
                    let set = n.set.clone().unwrap_or_default();
                    for ch in set.keys() {
                        self.writes_channel(&at.key("set").key(ch), n, ch, channels);
                        writes.push(ch.clone());
                    }
                    NodeKind::Transform {
                        set: self.expr_map(&at.key("set"), &set, channels, fe),
                    }
                }
                NodeKindName::Interrupt => {
                    let ok = require(self, "prompt", n.prompt.is_some())
                        & require(self, "writes", n.writes.is_some());
                    if !ok {
                        continue;
                    }
                    let schema_src = n.schema.clone().unwrap_or(Value::Bool(true));
                    let Some(schema) = self.schema(&at.key("schema"), &schema_src) else {
                        continue;
                    };
                    let Some(prompt) = self.template(
                        templates,
                        &at.key("prompt"),
                        n.prompt.as_deref().unwrap_or_default(),
                        channels,
                        fe,
                    ) else {
                        continue;
                    };
                    NodeKind::Interrupt {
                        prompt,
                        schema: Arc::new(schema),
                        writes: n.writes.clone().unwrap_or_default(),
                    }
                }
                NodeKindName::Workflow => {
                    if !require(self, "workflow", n.workflow.is_some()) {
                        continue;
                    }
                    NodeKind::Workflow {
                        workflow: n.workflow.clone().unwrap_or_default(),
                        input: self.expr_map(
                            &at.key("input"),
                            &n.input.clone().unwrap_or_default(),
                            channels,
                            fe,
                        ),
                        writes: n.writes.clone(),
                    }
                }
                NodeKindName::Builtin => {
                    if !require(self, "name", n.name.is_some()) {
                        continue;
                    }
                    NodeKind::Builtin {
                        name: n.name.clone().unwrap_or_default(),
                        with: self.expr_map(
                            &at.key("with"),
                            &n.with.clone().unwrap_or_default(),
                            channels,
                            fe,
                        ),
                        writes: n.writes.clone(),
                    }
                }
                NodeKindName::Llm => {
                    if !require(self, "prompt", n.prompt.is_some()) {
                        continue;
                    }
                    let system = n
                        .system
                        .as_ref()
                        .and_then(|s| self.template(templates, &at.key("system"), s, channels, fe));
                    let Some(prompt) = self.template(
                        templates,
                        &at.key("prompt"),
                        n.prompt.as_deref().unwrap_or_default(),
                        channels,
                        fe,
                    ) else {
                        continue;
                    };
                    let output = n.output.clone().unwrap_or(Value::String("text".into()));
                    self.check_llm_output(&at.key("output"), &output);
                    let role = match n.role.as_deref() {
                        None => Role::Fixed("leader".into()),
                        Some(r) if r.contains("{{") || r.contains("{%") => {
                            match self.template(templates, &at.key("role"), r, channels, fe) {
                                Some(key) => Role::Template(key),
                                None => continue,
                            }
                        }
                        Some(r) => Role::Fixed(r.to_string()),
                    };
                    NodeKind::Llm(LlmNode {
                        role,
                        system,
                        prompt,
                        output,
                        tools: n.tools.clone().unwrap_or_default(),
                        writes: n.writes.clone(),
                    })
                }
                NodeKindName::Tool => {
                    if !require(self, "tool", n.tool.is_some()) {
                        continue;
                    }
                    let args_src = n.args.clone().unwrap_or(Value::Object(Default::default()));
                    if !args_src.is_object() {
                        self.issue(&at.key("args"), "tool `args` must be a mapping");
                        continue;
                    }
                    let args = self.arg_value(templates, &at.key("args"), &args_src, channels, fe);
                    NodeKind::Tool {
                        tool: n.tool.clone().unwrap_or_default(),
                        args,
                        writes: n.writes.clone(),
                    }
                }
            };
            let default_attempts = match n.kind {
                NodeKindName::Llm | NodeKindName::Tool => 3,
                _ => 1,
            };
            let retry = self.retry(
                &at.key("retry"),
                n.retry.as_ref(),
                &default_retry,
                default_attempts,
            );
            let timeout = self.seconds(&at.key("timeout_s"), n.timeout_s);
            out.insert(
                name.clone(),
                Node {
                    name: name.clone(),
                    description: n.description.clone(),
                    kind,
                    for_each,
                    retry,
                    timeout,
                    writes,
                    key,
                },
            );
        }
        out
    }

    fn check_llm_output(&mut self, at: &At, output: &Value) {
        match output {
            Value::String(s) if s == "text" => {}
            Value::Object(m) if m.len() == 1 && m.contains_key("schema") => {
                if let Some(s) = m.get("schema") {
                    self.schema(&at.key("schema"), s);
                }
            }
            Value::Object(m) if m.len() == 1 && matches!(m.get("type"), Some(Value::String(_))) => {
                let name = m.get("type").and_then(Value::as_str).unwrap_or_default();
                if ao_core::types::type_schema(name).is_none() {
                    self.issue(
                        &at.key("type"),
                        format!(
                            "unknown output type `{name}` (known: {})",
                            ao_core::types::TYPE_NAMES.join(", ")
                        ),
                    );
                }
            }
            _ => self.issue(
                at,
                "expected `text`, `{schema: JSON-Schema}` or `{type: NAME}`",
            ),
        }
    }

    fn arg_value(
        &mut self,
        templates: &mut Templates,
        at: &At,
        v: &Value,
        channels: &BTreeMap<String, Channel>,
        fe: bool,
    ) -> ArgValue {
        match v {
            Value::String(s) => {
                let trimmed = s.trim();
                let inner = trimmed
                    .strip_prefix("{{")
                    .and_then(|r| r.strip_suffix("}}"));
                match inner {
                    Some(inner) if !inner.contains("{{") && !inner.contains("}}") => {
                        match self.expr(at, &ExprSource(inner.trim().to_string()), channels, fe) {
                            Some(e) => ArgValue::Expr(e),
                            None => ArgValue::Literal(Value::Null),
                        }
                    }
                    _ if s.contains("{{") || s.contains("{%") => {
                        match self.template(templates, at, s, channels, fe) {
                            Some(k) => ArgValue::Template(k),
                            None => ArgValue::Literal(Value::Null),
                        }
                    }
                    _ => ArgValue::Literal(v.clone()),
                }
            }
            Value::Array(items) => ArgValue::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| self.arg_value(templates, &at.idx(i), x, channels, fe))
                    .collect(),
            ),
            Value::Object(m) => ArgValue::Map(
                m.iter()
                    .map(|(k, x)| {
                        (
                            k.clone(),
                            self.arg_value(templates, &at.key(k), x, channels, fe),
                        )
                    })
                    .collect(),
            ),
            other => ArgValue::Literal(other.clone()),
        }
    }

    fn target(
        &mut self,
        at: &At,
        name: &str,
        nodes: &BTreeMap<String, Node>,
        spec: &WorkflowSpec,
    ) -> Option<Target> {
        match name {
            "END" => Some(Target::End),
            "START" => {
                self.issue(at, "an edge cannot lead to START");
                None
            }
            n if nodes.contains_key(n) => Some(Target::Node(n.to_string())),
            // A node that exists but failed to compile was already reported.
            n if spec.nodes.contains_key(n) => None,
            n => {
                self.issue(
                    at,
                    format!(
                        "unknown node `{n}` (nodes: {})",
                        spec.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                None
            }
        }
    }

    fn source_node(&mut self, at: &At, name: &str, spec: &WorkflowSpec, allow_start: bool) -> bool {
        match name {
            "START" if allow_start => true,
            "START" => {
                self.issue(at, "START cannot be part of a join");
                false
            }
            "END" => {
                self.issue(at, "no edge can leave END");
                false
            }
            n if spec.nodes.contains_key(n) => true,
            n => {
                self.issue(
                    at,
                    format!(
                        "unknown node `{n}` (nodes: {})",
                        spec.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                false
            }
        }
    }

    fn edges(
        &mut self,
        spec: &WorkflowSpec,
        nodes: &BTreeMap<String, Node>,
        channels: &BTreeMap<String, Channel>,
    ) -> (Vec<Edge>, Vec<String>) {
        let mut edges = Vec::new();
        let mut entry = BTreeSet::new();
        for (i, e) in spec.edges.iter().enumerate() {
            let at = root().key("edges").idx(i);
            match (&e.to, &e.when) {
                (Some(_), Some(_)) => {
                    self.issue(&at, "an edge has either `to` or `when`, not both");
                    continue;
                }
                (None, None) => {
                    self.issue(&at, "an edge needs `to` (or `when` for a conditional edge)");
                    continue;
                }
                _ => {}
            }
            match &e.from {
                EdgeFrom::One(from) => {
                    if !self.source_node(&at.key("from"), from, spec, true) {
                        continue;
                    }
                    if let Some(to) = &e.to {
                        let Some(target) = self.target(&at.key("to"), to, nodes, spec) else {
                            continue;
                        };
                        if from == "START" {
                            match target {
                                Target::Node(n) => {
                                    entry.insert(n);
                                }
                                Target::End => {
                                    self.issue(&at.key("to"), "START must lead to a node")
                                }
                            }
                        } else {
                            edges.push(Edge::Static {
                                from: from.clone(),
                                to: target,
                            });
                        }
                    } else if let Some(when) = &e.when {
                        if from == "START" {
                            self.issue(&at.key("when"), "edges from START cannot be conditional: the state is empty before the first step");
                            continue;
                        }
                        if let Some(branches) =
                            self.branches(&at.key("when"), when, nodes, spec, channels)
                        {
                            edges.push(Edge::Conditional {
                                from: from.clone(),
                                branches,
                            });
                        }
                    }
                }
                EdgeFrom::Many(froms) => {
                    if e.when.is_some() {
                        self.issue(&at.key("when"), "a join (a list in `from`) cannot be conditional; join into a node, then branch from it");
                        continue;
                    }
                    if froms.len() < 2 {
                        self.issue(&at.key("from"), "a join needs at least two source nodes");
                        continue;
                    }
                    let mut ok = true;
                    for (j, f) in froms.iter().enumerate() {
                        ok &= self.source_node(&at.key("from").idx(j), f, spec, false);
                    }
                    let unique: BTreeSet<&String> = froms.iter().collect();
                    if unique.len() != froms.len() {
                        self.issue(&at.key("from"), "a join lists a node twice");
                        ok = false;
                    }
                    let target =
                        e.to.as_ref()
                            .and_then(|to| self.target(&at.key("to"), to, nodes, spec));
                    if let (true, Some(to)) = (ok, target) {
                        edges.push(Edge::Join {
                            from: froms.clone(),
                            to,
                        });
                    }
                }
            }
        }
        if entry.is_empty() && !spec.nodes.is_empty() && self.issues.is_empty() {
            self.issue(
                &root().key("edges"),
                "no edge leaves START, so nothing would run: add `{from: START, to: NODE}`",
            );
        }
        (edges, entry.into_iter().collect())
    }

    fn branches(
        &mut self,
        at: &At,
        when: &[BranchSpec],
        nodes: &BTreeMap<String, Node>,
        spec: &WorkflowSpec,
        channels: &BTreeMap<String, Channel>,
    ) -> Option<Vec<Branch>> {
        if when.is_empty() {
            self.issue(at, "`when` needs at least one branch");
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, b) in when.iter().enumerate() {
            let bat = at.idx(i);
            match (&b.condition, &b.to, &b.otherwise) {
                (Some(cond), Some(to), None) => {
                    let e = self.expr(&bat.key("if"), cond, channels, false);
                    let t = self.target(&bat.key("to"), to, nodes, spec);
                    match (e, t) {
                        (Some(e), Some(t)) => out.push(Branch {
                            condition: Some(e),
                            to: t,
                        }),
                        _ => ok = false,
                    }
                }
                (None, None, Some(to)) => {
                    if i + 1 != when.len() {
                        self.issue(&bat, "`else` must be the last branch");
                        ok = false;
                    }
                    match self.target(&bat.key("else"), to, nodes, spec) {
                        Some(t) => out.push(Branch {
                            condition: None,
                            to: t,
                        }),
                        None => ok = false,
                    }
                }
                _ => {
                    self.issue(&bat, "a branch is `{if: EXPR, to: NODE}` or `{else: NODE}`");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn check_reachable(&mut self, spec: &WorkflowSpec, edges: &[Edge], entry: &[String]) {
        if !self.issues.is_empty() {
            return;
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut queue: VecDeque<&str> = entry.iter().map(String::as_str).collect();
        while let Some(n) = queue.pop_front() {
            if !seen.insert(n) {
                continue;
            }
            for e in edges {
                let targets: Vec<&Target> = match e {
                    Edge::Static { from, to } if from == n => vec![to],
                    Edge::Conditional { from, branches } if from == n => {
                        branches.iter().map(|b| &b.to).collect()
                    }
                    Edge::Join { from, to } if from.iter().any(|f| f == n) => vec![to],
                    _ => vec![],
                };
                for t in targets {
                    if let Target::Node(next) = t {
                        queue.push_back(next);
                    }
                }
            }
        }
        for name in spec.nodes.keys() {
            if !seen.contains(name.as_str()) {
                self.issue(
                    &root().key("nodes").key(name),
                    format!("node `{name}` is never reached from START"),
                );
            }
        }
    }
}
