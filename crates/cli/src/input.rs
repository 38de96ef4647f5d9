//! Turning command-line arguments into JSON: `--input KEY=VALUE`, `--input-json JSON|@FILE`,
//! `--answer JSON|@FILE`.

use crate::CliError;
use serde_json::{Map, Value};

/// `JSON` itself, or `@FILE` to read it from a file (`@-` for stdin).
pub fn json_arg(flag: &str, text: &str) -> Result<Value, CliError> {
    let (source, body) = match text.strip_prefix('@') {
        Some("-") => {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
                .map_err(|e| CliError::usage(format!("{flag} @-: cannot read stdin: {e}")))?;
            ("stdin".to_string(), buf)
        }
        Some(path) => (
            path.to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                CliError::usage(format!("{flag} @{path}: cannot read the file: {e}"))
            })?,
        ),
        None => ("the argument".to_string(), text.to_string()),
    };
    serde_json::from_str(&body).map_err(|e| {
        // serde's message already ends with the position.
        let mut message = format!("{flag}: {source} is not valid JSON: {e}");
        let bare_word = body
            .trim()
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if bare_word && !body.trim().is_empty() {
            message.push_str(&format!(
                "; a string needs JSON quotes: {flag} '\"{}\"'",
                body.trim()
            ));
        }
        CliError::usage(message)
    })
}

/// Builds the run input: `--input-json` first, then each `--input KEY=VALUE` on top. A VALUE
/// that parses as JSON (`3`, `true`, `[1,2]`, `"x"`) is taken as that value, anything else as
/// a string.
pub fn run_input(
    pairs: &[String],
    json: Option<&str>,
    extra: &[(&str, Option<&String>)],
) -> Result<Value, CliError> {
    let mut input = match json {
        Some(text) => match json_arg("--input-json", text)? {
            Value::Object(m) => m,
            other => {
                return Err(CliError::usage(format!(
                    "--input-json must be a JSON object, got {other}"
                )));
            }
        },
        None => Map::new(),
    };
    for (key, value) in extra {
        if let Some(v) = value {
            input.insert(key.to_string(), Value::String(v.to_string()));
        }
    }
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::usage(format!(
                "--input `{pair}`: expected KEY=VALUE"
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(CliError::usage(format!(
                "--input `{pair}`: the key is empty"
            )));
        }
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        input.insert(key.to_string(), value);
    }
    Ok(Value::Object(input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_are_typed_when_they_parse_as_json() {
        let v = run_input(
            &[
                "n=3".into(),
                "name=bob".into(),
                "list=[1,2]".into(),
                "s=\"3\"".into(),
            ],
            None,
            &[],
        )
        .unwrap();
        assert_eq!(v, json!({"n": 3, "name": "bob", "list": [1, 2], "s": "3"}));
    }

    #[test]
    fn pairs_override_the_json_object() {
        let v = run_input(&["n=5".into()], Some(r#"{"n": 1, "m": 2}"#), &[]).unwrap();
        assert_eq!(v, json!({"n": 5, "m": 2}));
    }

    #[test]
    fn bad_shapes_are_usage_errors() {
        assert_eq!(
            run_input(&["novalue".into()], None, &[]).unwrap_err().code,
            2
        );
        assert_eq!(run_input(&[], Some("[1]"), &[]).unwrap_err().code, 2);
        assert!(
            run_input(&[], Some("{oops"), &[])
                .unwrap_err()
                .message
                .contains("line 1")
        );
    }
}

/// `--max-tokens`, `--max-cost`, `--max-llm-calls`: budget limits over the workflow's own.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BudgetArgs {
    /// The most model tokens (in + out) the run may spend, sub-runs included.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tokens: Option<u64>,
    /// The most US dollars the run may spend on models (needs a price for every model).
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// The most model requests the run may send.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_llm_calls: Option<u64>,
}

impl BudgetArgs {
    pub fn budget(&self) -> Result<ao_orchestrator::engine::Budget, CliError> {
        if let Some(c) = self.max_cost
            && !(c.is_finite() && c > 0.0)
        {
            return Err(CliError::usage(format!(
                "--max-cost {c}: give a positive number of dollars"
            )));
        }
        Ok(ao_orchestrator::engine::Budget {
            max_tokens: self.max_tokens,
            max_cost_usd: self.max_cost,
            max_llm_calls: self.max_llm_calls,
        })
    }
}

/// What a call the replay cassette does not answer does.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplayMissArg {
    /// The run fails, naming the node and what differs from the recorded call.
    #[default]
    Fail,
    /// That request goes to the configured model (and only that one).
    Live,
}

/// `--record FILE`, `--replay FILE`, `--replay-miss fail|live`: record a run's model calls to a
/// cassette, or answer them from one.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReplayArgs {
    /// Write the run's model calls to a cassette FILE when it stops (for --replay).
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
    /// Answer the run's model calls from a cassette FILE instead of the models: nothing is sent.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<std::path::PathBuf>,
    /// With --replay: a call the cassette does not answer fails the run (fail, the default), or
    /// goes to the configured model (live).
    #[arg(long, value_name = "WHAT", value_enum, requires = "replay")]
    pub replay_miss: Option<ReplayMissArg>,
}

impl ReplayArgs {
    /// `service`, recording and replaying as asked. The cassette is read (and checked) now, so a
    /// bad one is an error before anything runs.
    pub fn apply(
        &self,
        service: ao_orchestrator::Service,
    ) -> Result<ao_orchestrator::Service, CliError> {
        let mut service = service;
        if let Some(path) = &self.replay {
            let miss = match self.replay_miss.unwrap_or_default() {
                ReplayMissArg::Fail => ao_orchestrator::replay::ReplayMiss::Fail,
                ReplayMissArg::Live => ao_orchestrator::replay::ReplayMiss::Live,
            };
            let replay = ao_orchestrator::replay::Replay::load(path, miss)?;
            service = service.with_replay(std::sync::Arc::new(replay));
        }
        if let Some(path) = &self.record {
            service = service.with_record(path.clone());
        }
        Ok(service)
    }
}
