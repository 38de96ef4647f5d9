//! Expressions and templates (Jinja syntax, via minijinja), compiled once at load time.
//!
//! Expressions (`set`, `for_each`, `if`, `input`, `with`, `output`) evaluate to a JSON value;
//! templates (`prompt`, `system`, interrupt prompts, tool args) render to text. Both see the
//! same [`Scope`]: `input`, `state`, `run` (`id`, `step`) and, in a `for_each` task, `item` and
//! `index`. Undefined names and attributes are errors, never silently empty.

use minijinja::value::{Enumerator, Object, Value as JValue};
use minijinja::{Environment, Expression, UndefinedBehavior};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

/// The names every expression and template may use.
pub const SCOPE_NAMES: [&str; 5] = ["input", "state", "run", "item", "index"];

/// Instructions one evaluation of an expression or rendering of a template may execute. A
/// loop that would run longer fails its node with a clear error instead of holding a worker
/// (and the run's timeout) hostage; well within it, a template can loop over thousands of
/// items.
pub const FUEL: u64 = 5_000_000;

/// The most text one template may render, and the most JSON one expression may produce.
pub const MAX_OUTPUT_BYTES: usize = 8 * 1024 * 1024;

fn configure(env: &mut Environment<'static>) {
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Bounded recursion keeps a hostile template from exhausting the stack.
    env.set_recursion_limit(64);
    env.set_fuel(Some(FUEL));
    // A template ending in a newline renders one (file contents and prompts keep it).
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
}

/// Expressions are compiled against one process-wide environment, so a compiled expression can
/// be kept in the compiled workflow without borrowing anything.
static EXPR_ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    configure(&mut env);
    env
});

/// Is `name` a function or global the expression language provides (`range`, `dict`, …)?
pub fn is_global(name: &str) -> bool {
    EXPR_ENV.globals().any(|(n, _)| n == name)
}

/// A compiled expression and its source text (kept for error messages and rendering).
pub struct Expr {
    source: String,
    compiled: Expression<'static, 'static>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl Expr {
    /// Compiles `source`; the error is minijinja's message (with its position in the source).
    pub fn compile(source: &str) -> Result<Self, String> {
        let compiled = EXPR_ENV
            .compile_expression_owned(source.to_string())
            .map_err(describe)?;
        Ok(Expr {
            source: source.to_string(),
            compiled,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Top-level names and `state.X` paths the expression reads, for load-time checks.
    pub fn referenced_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .compiled
            .undeclared_variables(true)
            .into_iter()
            .collect();
        names.sort();
        names
    }

    pub fn eval(&self, scope: &Scope) -> Result<Value, String> {
        let value = self.compiled.eval(scope.to_value()).map_err(describe)?;
        let json = to_json(&value)?;
        if exceeds(&json, MAX_OUTPUT_BYTES) {
            return Err(format!(
                "the value is larger than {} MiB (the limit for one expression)",
                MAX_OUTPUT_BYTES / (1024 * 1024)
            ));
        }
        Ok(json)
    }

    /// Evaluates to a boolean by Jinja truthiness (`[]`, `0`, `""`, `none` are false).
    pub fn eval_truthy(&self, scope: &Scope) -> Result<bool, String> {
        let value = self.compiled.eval(scope.to_value()).map_err(describe)?;
        Ok(value.is_true())
    }
}

/// The templates of one workflow, compiled into an environment of its own.
#[derive(Default)]
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        configure(&mut env);
        Templates { env }
    }

    /// Compiles `source` under `key` (a path such as `nodes.ask.prompt`).
    pub fn add(&mut self, key: &str, source: &str) -> Result<(), String> {
        self.env
            .add_template_owned(key.to_string(), source.to_string())
            .map_err(describe)
    }

    /// Names the template reads, for load-time checks.
    pub fn referenced_names(&self, key: &str) -> Vec<String> {
        match self.env.get_template(key) {
            Ok(t) => {
                let mut names: Vec<String> = t.undeclared_variables(true).into_iter().collect();
                names.sort();
                names
            }
            Err(_) => Vec::new(),
        }
    }

    pub fn render(&self, key: &str, scope: &Scope) -> Result<String, String> {
        let template = self.env.get_template(key).map_err(describe)?;
        let mut out = CappedText::default();
        match template.render_captured_to(scope.to_value(), &mut out) {
            Ok(_) => String::from_utf8(out.bytes)
                .map_err(|_| "the template rendered text that is not UTF-8".to_string()),
            Err(_) if out.full => Err(format!(
                "the template renders more than {} MiB of text (the limit for one template)",
                MAX_OUTPUT_BYTES / (1024 * 1024)
            )),
            Err(e) => Err(describe(e)),
        }
    }
}

/// Collects rendered text up to [`MAX_OUTPUT_BYTES`], then refuses more (which stops the
/// render).
#[derive(Default)]
struct CappedText {
    bytes: Vec<u8>,
    full: bool,
}

impl std::io::Write for CappedText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.full = true;
            return Err(std::io::Error::other("template output limit reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `value` would take more than `limit` bytes as JSON (about: strings and keys by
/// length, every other value a few bytes), stopping as soon as it does.
fn exceeds(value: &Value, limit: usize) -> bool {
    fn walk(v: &Value, left: &mut usize) -> bool {
        let cost = match v {
            Value::String(s) => s.len() + 2,
            _ => 8,
        };
        if cost > *left {
            return true;
        }
        *left -= cost;
        match v {
            Value::Array(items) => items.iter().any(|i| walk(i, left)),
            Value::Object(map) => map.iter().any(|(k, i)| {
                if k.len() + 3 > *left {
                    return true;
                }
                *left -= k.len() + 3;
                walk(i, left)
            }),
            _ => false,
        }
    }
    let mut left = limit;
    walk(value, &mut left)
}

/// minijinja's error with its detail and position, on one line.
fn describe(err: minijinja::Error) -> String {
    if err.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!(
            "it ran more than {FUEL} instructions (the limit for one expression or template; a loop that long is almost always a mistake)"
        );
    }
    let mut msg = err.to_string();
    if let Some(detail) = err.detail()
        && !msg.contains(detail)
    {
        msg = format!("{msg}: {detail}");
    }
    msg
}

/// Converts an expression's value to JSON. Values JSON cannot hold (functions, undefined) are
/// errors rather than a silent `null`.
pub fn to_json(value: &JValue) -> Result<Value, String> {
    if value.is_undefined() {
        return Err("the expression evaluated to an undefined value".into());
    }
    serde_json::to_value(value).map_err(|e| format!("the value cannot be stored as JSON: {e}"))
}

/// Converts JSON to a template value directly (no serde round trip: this runs for every
/// channel that changes in a step).
pub fn from_json(value: &Value) -> JValue {
    match value {
        Value::Null => JValue::from(()),
        Value::Bool(b) => JValue::from(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                JValue::from(i)
            } else if let Some(u) = n.as_u64() {
                JValue::from(u)
            } else {
                JValue::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => JValue::from(s.as_str()),
        Value::Array(items) => JValue::from(items.iter().map(from_json).collect::<Vec<_>>()),
        Value::Object(map) => JValue::from_object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_json(v)))
                .collect::<BTreeMap<String, JValue>>(),
        ),
    }
}

/// What an expression or template sees. Cheap to build: every part is a shared minijinja value.
#[derive(Debug, Clone)]
pub struct Scope {
    pub input: JValue,
    pub state: JValue,
    pub run: JValue,
    pub item: Option<(JValue, usize)>,
}

impl Scope {
    pub fn new(input: JValue, state: JValue, run_id: &str, step: u64) -> Self {
        let run = JValue::from_object(BTreeMap::from([
            ("id".to_string(), JValue::from(run_id)),
            ("step".to_string(), JValue::from(step)),
        ]));
        Scope {
            input,
            state,
            run,
            item: None,
        }
    }

    pub fn with_item(&self, item: &Value, index: usize) -> Self {
        Scope {
            item: Some((from_json(item), index)),
            ..self.clone()
        }
    }

    fn to_value(&self) -> JValue {
        JValue::from_object(ScopeObject(self.clone()))
    }
}

#[derive(Debug)]
struct ScopeObject(Scope);

impl Object for ScopeObject {
    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        match key.as_str()? {
            "input" => Some(self.0.input.clone()),
            "state" => Some(self.0.state.clone()),
            "run" => Some(self.0.run.clone()),
            "item" => self.0.item.as_ref().map(|(v, _)| v.clone()),
            "index" => self.0.item.as_ref().map(|(_, i)| JValue::from(*i)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        if self.0.item.is_some() {
            Enumerator::Str(&SCOPE_NAMES)
        } else {
            Enumerator::Str(&SCOPE_NAMES[..3])
        }
    }
}

/// Builds the `state` value from per-channel values (kept converted between steps, so a step
/// converts only the channels that changed).
pub fn state_value(channels: &BTreeMap<String, JValue>) -> JValue {
    JValue::from_object(channels.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(state: Value) -> Scope {
        Scope::new(from_json(&json!({"n": 3})), from_json(&state), "R1", 2)
    }

    #[test]
    fn evaluates_over_the_scope() {
        let e = Expr::compile("state.count * 2 + input.n").unwrap();
        assert_eq!(e.eval(&scope(json!({"count": 4}))).unwrap(), json!(11));
        let e = Expr::compile("range(input.n) | list").unwrap();
        assert_eq!(e.eval(&scope(json!({}))).unwrap(), json!([0, 1, 2]));
        let e = Expr::compile("'fan-' ~ index").unwrap();
        assert_eq!(
            e.eval(&scope(json!({})).with_item(&json!("x"), 4)).unwrap(),
            json!("fan-4")
        );
        let e = Expr::compile("run.step").unwrap();
        assert_eq!(e.eval(&scope(json!({}))).unwrap(), json!(2));
    }

    #[test]
    fn undefined_is_an_error_not_empty() {
        let e = Expr::compile("state.nope + 1").unwrap();
        let err = e.eval(&scope(json!({"count": 1}))).unwrap_err();
        assert!(err.contains("undefined"), "{err}");
    }

    #[test]
    fn compile_errors_are_reported() {
        assert!(Expr::compile("state.count *").is_err());
        let mut t = Templates::new();
        assert!(t.add("x", "{{ state.count ").is_err());
    }

    #[test]
    fn templates_render_and_report_names() {
        let mut t = Templates::new();
        t.add("p", "Total is {{ state.total }}.").unwrap();
        assert_eq!(
            t.render("p", &scope(json!({"total": 7}))).unwrap(),
            "Total is 7."
        );
        assert_eq!(t.referenced_names("p"), vec!["state.total".to_string()]);
    }
}
