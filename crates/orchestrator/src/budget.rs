//! Run budgets: what a run (its sub-runs included) may spend on models — tokens, dollars,
//! requests — enforced before every model call and settled after it with the real usage.
//!
//! A run's budget is the workflow's `limits` overridden by the caller's (`--max-tokens`,
//! `--max-cost`, `--max-llm-calls`, or `ao.toml` defaults), stored with the top-level run so a
//! resume (and every sub-run) enforces the same one; `ao runs resume --max-cost 2.00` raises it.
//!
//! Concurrent calls of a fan-out *reserve* against the budget before they are sent, so ten
//! parallel calls cannot each see the same remaining amount:
//! - requests: a call reserves one — or three (room for two retries or repairs) when the budget
//!   left is ample: at least [`AMPLE_LEFT`] requests and three per call in flight — and the
//!   model layer is told it may send no more than it reserved (retries, fallbacks and repairs
//!   included), so the count is never exceeded and a fan-out near the limit still gets one
//!   request per call;
//! - tokens: a call reserves its prompt (estimated) plus its reply limit (`max_tokens`, lowered
//!   to what is left if need be);
//! - dollars: the reserved tokens at the role's price (a cost budget without a price is a
//!   configuration error before anything runs).
//!
//! A call that does not fit fails its task with kind `budget_exceeded` (not retried): the run
//! stops at the end of that step and can be resumed with a raised budget.

use crate::records::RunUsage;
use ao_core::config::Price;
use ao_graph::{Budget, NodeFailure};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The failure kind of a call refused by the budget.
pub const BUDGET_EXCEEDED: &str = "budget_exceeded";

/// Requests one call reserves when the budget is ample (its first try and two more).
const AMPLE_REQUESTS: u64 = 3;

/// Requests left from which a call may reserve [`AMPLE_REQUESTS`] (three for each of eight
/// concurrent calls, the default concurrency).
pub const AMPLE_LEFT: u64 = 24;

/// What calls in flight have reserved, per top-level run.
#[derive(Default)]
pub struct BudgetGuard {
    reserved: Mutex<HashMap<String, Reserved>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Reserved {
    calls_in_flight: u64,
    requests: u64,
    tokens: u64,
    cost: f64,
}

/// What a call is about to ask for.
pub struct CallEstimate<'a> {
    pub node: &'a str,
    /// Prompt tokens, estimated from the request's text.
    pub prompt_tokens: u64,
    /// The reply limit the call would send.
    pub max_tokens: u64,
    /// The role's price (per million tokens), if any.
    pub price: Option<&'a Price>,
}

/// A call's place in the budget: what it may send, held until it is dropped.
pub struct Reservation {
    guard: Arc<BudgetGuard>,
    run: String,
    held: Reserved,
    /// The most requests the call may send (`None`: no request budget).
    pub max_requests: Option<u32>,
    /// The reply limit the call must send (`None`: the role's own).
    pub max_tokens: Option<u32>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut all = self
            .guard
            .reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(r) = all.get_mut(&self.run) {
            r.calls_in_flight = r.calls_in_flight.saturating_sub(self.held.calls_in_flight);
            r.requests = r.requests.saturating_sub(self.held.requests);
            r.tokens = r.tokens.saturating_sub(self.held.tokens);
            r.cost = (r.cost - self.held.cost).max(0.0);
            if r.calls_in_flight == 0 {
                all.remove(&self.run);
            }
        }
    }
}

fn cost_of(price: Option<&Price>, prompt: u64, completion: u64) -> f64 {
    price.map_or(0.0, |p| {
        (prompt as f64 * p.input + completion as f64 * p.output) / 1_000_000.0
    })
}

fn exceeded(limit: &str, spent: String, node: &str) -> NodeFailure {
    NodeFailure {
        message: format!(
            "the run's budget {limit} is reached ({spent} spent, sub-runs included); node `{node}` would call the model. Resume with a raised budget to continue"
        ),
        retryable: false,
        kind: BUDGET_EXCEEDED,
    }
}

impl BudgetGuard {
    /// Reserves room for one call of `run` (the top-level run) against `budget`, given what
    /// the run has `used` so far; refuses a call that does not fit.
    pub fn reserve(
        self: &Arc<Self>,
        run: &str,
        budget: &Budget,
        used: &RunUsage,
        call: &CallEstimate<'_>,
    ) -> Result<Reservation, NodeFailure> {
        let mut all = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        let now = all.get(run).copied().unwrap_or_default();
        let used_requests = used.totals.calls;
        let used_tokens = used.totals.total.total_tokens();
        let used_cost = used.totals.total.cost_usd.unwrap_or(0.0);
        let mut held = Reserved {
            calls_in_flight: 1,
            ..Reserved::default()
        };
        let mut max_requests = None;
        if let Some(limit) = budget.max_llm_calls {
            let free = limit.saturating_sub(used_requests + now.requests);
            if free == 0 {
                return Err(exceeded(
                    &format!("max_llm_calls ({limit})"),
                    format!("{used_requests} model requests"),
                    call.node,
                ));
            }
            let take = if free >= AMPLE_LEFT && free >= AMPLE_REQUESTS * (now.calls_in_flight + 1) {
                AMPLE_REQUESTS
            } else {
                1
            };
            held.requests = take;
            max_requests = Some(u32::try_from(take).unwrap_or(1));
        }
        let mut max_tokens = None;
        if let Some(limit) = budget.max_tokens {
            let free = limit.saturating_sub(used_tokens + now.tokens);
            // The reply may use what is left after the prompt, up to the call's own limit.
            if free <= call.prompt_tokens {
                return Err(exceeded(
                    &format!("max_tokens ({limit})"),
                    format!("{used_tokens} tokens"),
                    call.node,
                ));
            }
            let reply = call.max_tokens.min(free - call.prompt_tokens).max(1);
            held.tokens = call.prompt_tokens + reply;
            max_tokens = Some(u32::try_from(reply).unwrap_or(u32::MAX));
        }
        if let Some(limit) = budget.max_cost_usd {
            let reply = max_tokens.map_or(call.max_tokens, u64::from);
            let cost = cost_of(call.price, call.prompt_tokens, reply);
            if used.totals.calls > 0 && used.totals.total.cost_usd.is_none() {
                return Err(exceeded(
                    &format!("max_cost_usd (${limit:.4})"),
                    "an unknown amount (a model without a price answered)".into(),
                    call.node,
                ));
            }
            if used_cost + now.cost + cost > limit {
                return Err(exceeded(
                    &format!("max_cost_usd (${limit:.4})"),
                    format!("${used_cost:.4}"),
                    call.node,
                ));
            }
            held.cost = cost;
        }
        let entry = all.entry(run.to_string()).or_default();
        entry.calls_in_flight += held.calls_in_flight;
        entry.requests += held.requests;
        entry.tokens += held.tokens;
        entry.cost += held.cost;
        Ok(Reservation {
            guard: self.clone(),
            run: run.to_string(),
            held,
            max_requests,
            max_tokens,
        })
    }
}

/// Where a run's budget is kept: in the top-level run's `meta`, under this key.
pub const META_KEY: &str = "budget";

/// The budget stored with a top-level run (none when it has none).
pub fn stored_budget(
    store: &ao_graph::RunStore,
    top_run: &str,
) -> Result<Budget, ao_graph::StoreError> {
    Ok(store
        .meta(top_run)?
        .and_then(|m| m.get(META_KEY).cloned())
        .and_then(|b| serde_json::from_value(b).ok())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ao_models::Usage;

    fn used(calls: u64, tokens: u64, cost: Option<f64>) -> RunUsage {
        let mut u = RunUsage::default();
        for _ in 0..calls {
            u.totals.add(
                "leader",
                &Usage {
                    prompt_tokens: tokens / calls.max(1),
                    completion_tokens: 0,
                    estimated: false,
                    cost_usd: cost.map(|c| c / calls as f64),
                },
            );
        }
        u
    }

    fn est(node: &str) -> CallEstimate<'_> {
        CallEstimate {
            node,
            prompt_tokens: 10,
            max_tokens: 100,
            price: None,
        }
    }

    #[test]
    fn concurrent_calls_share_the_request_budget_and_release_it() {
        let guard = Arc::new(BudgetGuard::default());
        let budget = Budget {
            max_llm_calls: Some(4),
            ..Budget::default()
        };
        let none = RunUsage::default();
        let held: Vec<Reservation> = (0..4)
            .map(|_| guard.reserve("r", &budget, &none, &est("n")).unwrap())
            .collect();
        assert!(
            held.iter().all(|r| r.max_requests == Some(1)),
            "tight budget: no retries"
        );
        let err = guard
            .reserve("r", &budget, &none, &est("fifth"))
            .err()
            .unwrap();
        assert_eq!(err.kind, BUDGET_EXCEEDED);
        assert!(err.message.contains("max_llm_calls (4)") && err.message.contains("`fifth`"));
        drop(held);
        // Released: room again; another run is not affected at all.
        assert!(guard.reserve("r", &budget, &none, &est("n")).is_ok());
        assert!(
            guard
                .reserve("other", &budget, &used(4, 4, None), &est("n"))
                .is_err()
        );
        let ample = Budget {
            max_llm_calls: Some(100),
            ..Budget::default()
        };
        assert_eq!(
            guard
                .reserve("r2", &ample, &none, &est("n"))
                .unwrap()
                .max_requests,
            Some(3)
        );
    }

    #[test]
    fn tokens_and_cost_are_reserved_before_the_call() {
        let guard = Arc::new(BudgetGuard::default());
        let budget = Budget {
            max_tokens: Some(150),
            ..Budget::default()
        };
        let first = guard
            .reserve("r", &budget, &RunUsage::default(), &est("n"))
            .unwrap();
        assert_eq!(first.max_tokens, Some(100));
        // 110 reserved: the next call's prompt fits but its reply is cut to what is left.
        let second = guard
            .reserve("r", &budget, &RunUsage::default(), &est("n"))
            .unwrap();
        assert_eq!(second.max_tokens, Some(30));
        assert!(
            guard
                .reserve("r", &budget, &RunUsage::default(), &est("n"))
                .is_err()
        );

        let price = Price {
            input: 1_000_000.0,
            output: 1_000_000.0,
        };
        let costly = CallEstimate {
            price: Some(&price),
            ..est("n")
        };
        let budget = Budget {
            max_cost_usd: Some(200.0),
            ..Budget::default()
        };
        // 10 + 100 tokens at $1 each: $50 spent + $110 reserved; a second $110 does not fit.
        let _held = guard
            .reserve("c", &budget, &used(1, 50, Some(50.0)), &costly)
            .unwrap();
        let err = guard
            .reserve("c", &budget, &used(1, 50, Some(50.0)), &costly)
            .err()
            .unwrap();
        assert!(err.message.contains("max_cost_usd"), "{}", err.message);
    }
}
