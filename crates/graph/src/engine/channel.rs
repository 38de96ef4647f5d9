//! The state: channel values, and the reducers that fold a step's writes into them.
//!
//! Writes are applied in a deterministic order (node name, then `for_each` index), never in
//! completion order, so the same results always give the same state.

use super::error::RunError;
use super::expr::{from_json, state_value};
use super::graph::{Channel, Workflow};
use super::spec::Reducer;
use minijinja::value::Value as JValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One write of one task: a value for a channel.
pub type Write = (String, Value);

/// What a completed task produced, identified the way the store keys it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskWrites {
    pub node: String,
    /// The `for_each` index; `None` for a node without `for_each`.
    pub index: Option<usize>,
    pub writes: Vec<Write>,
}

/// Channel values plus their template-ready form, kept in step.
#[derive(Debug, Clone)]
pub struct State {
    values: BTreeMap<String, Value>,
    view: BTreeMap<String, JValue>,
}

impl State {
    /// Every channel at its default.
    pub fn initial(wf: &Workflow) -> Self {
        let values: BTreeMap<String, Value> = wf
            .channels
            .values()
            .map(|c| (c.name.clone(), c.default.clone()))
            .collect();
        Self::from_values(values)
    }

    pub fn from_values(values: BTreeMap<String, Value>) -> Self {
        let view = values
            .iter()
            .map(|(k, v)| (k.clone(), from_json(v)))
            .collect();
        State { values, view }
    }

    /// The same state under another definition of its workflow: channels it no longer has are
    /// dropped, new ones start at their defaults (what `resume --reload` continues with).
    pub fn adapted_to(&self, wf: &Workflow) -> Self {
        let values = wf
            .channels
            .values()
            .map(|c| {
                let v = self
                    .values
                    .get(&c.name)
                    .cloned()
                    .unwrap_or_else(|| c.default.clone());
                (c.name.clone(), v)
            })
            .collect();
        Self::from_values(values)
    }

    pub fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    pub fn to_json(&self) -> Value {
        Value::Object(
            self.values
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// The `state` value expressions see.
    pub fn view(&self) -> JValue {
        state_value(&self.view)
    }

    /// Applies one step's writes. `tasks` must already be in deterministic order (see
    /// [`sort_task_writes`]). Returns the channels that changed.
    pub fn apply(&mut self, wf: &Workflow, tasks: &[TaskWrites]) -> Result<Vec<String>, RunError> {
        let mut replace_writer: BTreeMap<&str, &str> = BTreeMap::new();
        let mut changed: Vec<String> = Vec::new();
        for task in tasks {
            for (channel_name, value) in &task.writes {
                let Some(channel) = wf.channels.get(channel_name) else {
                    return Err(RunError {
                        node: Some(task.node.clone()),
                        kind: "channel".into(),
                        message: format!("wrote the undeclared channel `{channel_name}`"),
                    });
                };
                if channel.reducer == Reducer::Replace
                    && let Some(other) = replace_writer.insert(channel_name, &task.node)
                    && other != task.node
                {
                    return Err(RunError {
                        node: Some(task.node.clone()),
                        kind: "conflict".into(),
                        message: format!(
                            "nodes `{other}` and `{}` both wrote the `replace` channel `{channel_name}` in the same step; give the channel a reducer that combines writes (append, merge, sum, union) or write it from one node",
                            task.node
                        ),
                    });
                }
                let current = self
                    .values
                    .entry(channel_name.clone())
                    .or_insert(Value::Null);
                reduce(channel, current, value.clone()).map_err(|message| RunError {
                    node: Some(task.node.clone()),
                    kind: "channel".into(),
                    message: format!("channel `{channel_name}`: {message}"),
                })?;
                if !changed.contains(channel_name) {
                    changed.push(channel_name.clone());
                }
            }
        }
        for name in &changed {
            let channel = &wf.channels[name];
            let value = &self.values[name];
            if let Some(schema) = &channel.schema {
                let errors = schema.errors(value);
                if !errors.is_empty() {
                    let writers: Vec<&str> = tasks
                        .iter()
                        .filter(|t| t.writes.iter().any(|(c, _)| c == name))
                        .map(|t| t.node.as_str())
                        .collect();
                    return Err(RunError {
                        node: writers.first().map(|s| s.to_string()),
                        kind: "channel".into(),
                        message: format!(
                            "after the writes of {} the channel `{name}` no longer matches its schema: {}",
                            writers.join(", "),
                            errors.join("; ")
                        ),
                    });
                }
            }
            self.view.insert(name.clone(), from_json(value));
        }
        Ok(changed)
    }
}

/// Sorts a step's task results into the order writes are applied: node name, then index.
pub fn sort_task_writes(tasks: &mut [TaskWrites]) {
    tasks.sort_by(|a, b| a.node.cmp(&b.node).then(a.index.cmp(&b.index)));
}

/// Checks one write against its channel's schema, before it is stored or applied. For list
/// channels a list write is checked item by item against the schema's `items`, since the
/// schema describes the reduced value.
pub fn check_write(channel: &Channel, value: &Value) -> Result<(), String> {
    let Some(schema) = &channel.schema else {
        return Ok(());
    };
    let errors = match channel.reducer {
        Reducer::Replace => schema.errors(value),
        // The schema describes the accumulated value; check what it would be for this write
        // alone, which catches wrong item types without needing the current value.
        Reducer::Append | Reducer::Union => {
            let as_list = match value {
                Value::Array(_) => value.clone(),
                other => Value::Array(vec![other.clone()]),
            };
            schema.errors(&as_list)
        }
        Reducer::Merge | Reducer::Sum => Vec::new(),
    };
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Folds `write` into `current` by the channel's reducer.
pub fn reduce(channel: &Channel, current: &mut Value, write: Value) -> Result<(), String> {
    match channel.reducer {
        Reducer::Replace => *current = write,
        Reducer::Append => {
            let list = as_list(current)?;
            match write {
                Value::Array(items) => list.extend(items),
                other => list.push(other),
            }
        }
        Reducer::Union => {
            let list = as_list(current)?;
            let items = match write {
                Value::Array(items) => items,
                other => vec![other],
            };
            for item in items {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
        Reducer::Merge => {
            if current.is_null() {
                *current = Value::Object(Default::default());
            }
            let Value::Object(target) = current else {
                return Err(format!(
                    "a merge channel must hold an object, it holds {}",
                    kind_of(current)
                ));
            };
            let Value::Object(source) = write else {
                return Err(format!(
                    "a merge channel takes objects, got {}",
                    kind_of(&write)
                ));
            };
            for (k, v) in source {
                target.insert(k, v);
            }
        }
        Reducer::Sum => {
            let add = |a: &Value, b: &Value| -> Option<Value> {
                if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
                    return x.checked_add(y).map(Value::from);
                }
                let sum = a.as_f64()? + b.as_f64()?;
                serde_json::Number::from_f64(sum).map(Value::Number)
            };
            let base = if current.is_null() {
                Value::from(0)
            } else {
                current.clone()
            };
            if !write.is_number() {
                return Err(format!(
                    "a sum channel takes numbers, got {}",
                    kind_of(&write)
                ));
            }
            *current = add(&base, &write).ok_or_else(|| format!("cannot add {write} to {base}"))?;
        }
    }
    Ok(())
}

fn as_list(v: &mut Value) -> Result<&mut Vec<Value>, String> {
    if v.is_null() {
        *v = Value::Array(Vec::new());
    }
    match v {
        Value::Array(list) => Ok(list),
        other => Err(format!(
            "a list channel must hold a list, it holds {}",
            kind_of(other)
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ch(reducer: Reducer) -> Channel {
        Channel {
            name: "c".into(),
            reducer,
            schema: None,
            default: Value::Null,
        }
    }

    fn fold(reducer: Reducer, start: Value, writes: &[Value]) -> Value {
        let c = ch(reducer);
        let mut v = start;
        for w in writes {
            reduce(&c, &mut v, w.clone()).unwrap();
        }
        v
    }

    #[test]
    fn replace_keeps_the_last_write() {
        assert_eq!(
            fold(Reducer::Replace, json!(1), &[json!(2), json!("x")]),
            json!("x")
        );
    }

    #[test]
    fn append_extends_with_lists_and_pushes_scalars() {
        assert_eq!(
            fold(
                Reducer::Append,
                json!([]),
                &[json!([1, 2]), json!(3), json!([[4]])]
            ),
            json!([1, 2, 3, [4]])
        );
    }

    #[test]
    fn union_drops_duplicates_in_first_seen_order() {
        assert_eq!(
            fold(
                Reducer::Union,
                json!(["b"]),
                &[json!(["a", "b"]), json!("c"), json!("a")]
            ),
            json!(["b", "a", "c"])
        );
    }

    #[test]
    fn merge_is_shallow_and_later_keys_win() {
        assert_eq!(
            fold(
                Reducer::Merge,
                json!({}),
                &[json!({"a": {"x": 1}, "b": 1}), json!({"a": {"y": 2}})]
            ),
            json!({"a": {"y": 2}, "b": 1})
        );
        let mut v = json!({});
        assert!(reduce(&ch(Reducer::Merge), &mut v, json!([1])).is_err());
    }

    #[test]
    fn sum_adds_integers_and_floats() {
        assert_eq!(
            fold(Reducer::Sum, json!(0), &[json!(2), json!(3)]),
            json!(5)
        );
        assert_eq!(fold(Reducer::Sum, json!(1), &[json!(0.5)]), json!(1.5));
        let mut v = json!(0);
        let err = reduce(&ch(Reducer::Sum), &mut v, json!("3")).unwrap_err();
        assert!(err.contains("numbers"), "{err}");
    }
}
