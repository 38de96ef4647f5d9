//! Token usage and cost, per call and totalled per role.

use std::collections::BTreeMap;

use ao_core::config::Price;
use serde::{Deserialize, Serialize};

/// Tokens of one call (summed over its HTTP round trips: repairs included) and its cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// True when at least one round trip's usage was estimated (~4 characters per token)
    /// because the server sent none.
    pub estimated: bool,
    /// US dollars, when the role has a price for the model that answered.
    pub cost_usd: Option<f64>,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Adds another usage; the cost stays known only if both are known.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.estimated |= other.estimated;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }

    pub(crate) fn priced(mut self, price: Option<&Price>) -> Usage {
        self.cost_usd = price.map(|p| {
            (self.prompt_tokens as f64 * p.input + self.completion_tokens as f64 * p.output)
                / 1_000_000.0
        });
        self
    }
}

/// Token estimate for text without a server count: about four characters per token.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// Usage totals of a run: overall and per role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    pub total: Usage,
    pub by_role: BTreeMap<String, Usage>,
    pub calls: u64,
}

impl UsageTotals {
    pub fn add(&mut self, role: &str, usage: &Usage) {
        if self.calls == 0 {
            self.total = *usage;
        } else {
            self.total.add(usage);
        }
        match self.by_role.get_mut(role) {
            Some(u) => u.add(usage),
            None => {
                self.by_role.insert(role.to_string(), *usage);
            }
        }
        self.calls += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_per_role_and_unknown_cost() {
        let priced = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 0,
            estimated: false,
            cost_usd: None,
        }
        .priced(Some(&Price {
            input: 3.0,
            output: 15.0,
        }));
        assert_eq!(priced.cost_usd, Some(3.0));
        let unpriced = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            estimated: true,
            cost_usd: None,
        };
        let mut totals = UsageTotals::default();
        totals.add("leader", &priced);
        totals.add("leader", &priced);
        assert_eq!(totals.by_role["leader"].cost_usd, Some(6.0));
        totals.add("default", &unpriced);
        assert_eq!(totals.total.prompt_tokens, 2_000_010);
        assert!(totals.total.estimated);
        assert_eq!(totals.total.cost_usd, None);
        assert_eq!(totals.by_role["default"].total_tokens(), 15);
        assert_eq!(totals.calls, 3);
        assert_eq!(estimate_tokens(9), 3);
    }
}
