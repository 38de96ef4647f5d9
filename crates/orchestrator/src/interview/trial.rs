//! What asking one case once produced: the model's reply, or a harness failure.
//!
//! These records are the raw material of an interview. They are plain data (serde), so a
//! workflow can store each one as it completes and, after a crash, ask only the cases that
//! have none; the scorer then judges replies from the records alone.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reply as the model gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelReply {
    /// The reply's text, unparsed: judging it is the scorer's job.
    pub text: String,
    pub latency_ms: u64,
    /// Prompt plus completion tokens, when the endpoint reported them.
    pub tokens: Option<u64>,
}

/// Why the harness could not get a reply. None of these says anything about the model.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum HarnessErrorKind {
    /// Connection refused, DNS failure, TLS failure.
    Connect,
    /// A time limit ran out (the model layer's or the interview's own).
    Timeout,
    /// 5xx after the model layer's retries.
    ServerError,
    /// 429 after the model layer's retries.
    RateLimited,
    /// The endpoint refused the request itself: bad key, unknown model, wrong URL, a reply
    /// that is not a chat completion.
    Endpoint,
    /// The harness itself failed (a bug in `ao`, not the model's doing).
    Internal,
}

impl HarnessErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HarnessErrorKind::Connect => "connect",
            HarnessErrorKind::Timeout => "timeout",
            HarnessErrorKind::ServerError => "server-error",
            HarnessErrorKind::RateLimited => "rate-limited",
            HarnessErrorKind::Endpoint => "endpoint",
            HarnessErrorKind::Internal => "internal",
        }
    }
}

/// A harness failure: the case is inconclusive, never failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HarnessError {
    pub kind: HarnessErrorKind,
    /// What failed, for people (already free of secrets).
    pub message: String,
}

impl HarnessError {
    pub fn new(kind: HarnessErrorKind, message: impl Into<String>) -> Self {
        HarnessError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for HarnessError {}

/// What one trial of one case produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TrialOutcome {
    Reply(ModelReply),
    Inconclusive(HarnessError),
}

/// One trial of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrialRecord {
    pub case_id: String,
    /// 1-based.
    pub trial: u32,
    pub result: TrialOutcome,
}

impl TrialRecord {
    pub fn is_inconclusive(&self) -> bool {
        matches!(self.result, TrialOutcome::Inconclusive(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_tagged_json() {
        let r = TrialRecord {
            case_id: "so-invoice".into(),
            trial: 2,
            result: TrialOutcome::Inconclusive(HarnessError::new(
                HarnessErrorKind::ServerError,
                "500 after 3 attempts",
            )),
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["result"]["outcome"], "inconclusive");
        assert_eq!(json["result"]["kind"], "server-error");
        assert_eq!(serde_json::from_value::<TrialRecord>(json).unwrap(), r);
        let reply = TrialRecord {
            case_id: "x".into(),
            trial: 1,
            result: TrialOutcome::Reply(ModelReply {
                text: "{}".into(),
                latency_ms: 12,
                tokens: None,
            }),
        };
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(json["result"]["outcome"], "reply");
        assert_eq!(serde_json::from_value::<TrialRecord>(json).unwrap(), reply);
        assert!(!reply.is_inconclusive());
    }
}
