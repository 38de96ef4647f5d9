//! Renders a workflow as Mermaid (`flowchart`), JSON or plain text (`ao graph show`).
//!
//! Mermaid: conditional edges carry their condition as the label, joins go through a small
//! join point, `for_each` nodes are drawn as subroutines and labelled so.

use super::graph::{Edge, Node, Target, Workflow};
use serde_json::{Value, json};
use std::fmt::Write;

fn node_id(name: &str) -> String {
    // Mermaid ids cannot hold `-`; names are [a-z0-9_-], so this mapping is one-to-one with
    // the `n_` prefix keeping ids clear of Mermaid keywords (`end`).
    format!("n_{}", name.replace('-', "__"))
}

fn target_id(t: &Target) -> String {
    match t {
        Target::Node(n) => node_id(n),
        Target::End => "END".into(),
    }
}

/// Text safe inside a quoted Mermaid label.
fn label(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('|', "#124;")
}

fn node_caption(node: &Node) -> String {
    let mut caption = format!(
        "{}<br/><i>{}</i>",
        label(&node.name),
        node.kind.name().as_str()
    );
    if let Some(fe) = &node.for_each {
        let _ = write!(caption, "<br/>for_each: {}", label(fe.source()));
    }
    caption
}

pub fn mermaid(wf: &Workflow) -> String {
    let mut out = String::from("flowchart TD\n");
    let _ = writeln!(out, "    START([START])");
    let _ = writeln!(out, "    END([END])");
    for node in wf.nodes.values() {
        let id = node_id(&node.name);
        let caption = node_caption(node);
        if node.for_each.is_some() {
            let _ = writeln!(out, "    {id}[[\"{caption}\"]]");
        } else {
            let _ = writeln!(out, "    {id}[\"{caption}\"]");
        }
    }
    for entry in &wf.entry {
        let _ = writeln!(out, "    START --> {}", node_id(entry));
    }
    for (i, edge) in wf.edges.iter().enumerate() {
        match edge {
            Edge::Static { from, to } => {
                let _ = writeln!(out, "    {} --> {}", node_id(from), target_id(to));
            }
            Edge::Conditional { from, branches } => {
                for b in branches {
                    let text = match &b.condition {
                        Some(c) => label(c.source()),
                        None => "else".into(),
                    };
                    let _ = writeln!(
                        out,
                        "    {} -->|\"{text}\"| {}",
                        node_id(from),
                        target_id(&b.to)
                    );
                }
            }
            Edge::Join { from, to } => {
                let join = format!("join{i}");
                let _ = writeln!(out, "    {join}(((\"join\")))");
                for f in from {
                    let _ = writeln!(out, "    {} -.-> {join}", node_id(f));
                }
                let _ = writeln!(out, "    {join} --> {}", target_id(to));
            }
        }
    }
    out
}

pub fn json(wf: &Workflow) -> Value {
    let nodes: Vec<Value> = wf
        .nodes
        .values()
        .map(|n| {
            let mut node = json!({
                "name": n.name,
                "kind": n.kind.name().as_str(),
                "description": n.description,
                "for_each": n.for_each.as_ref().map(|e| e.source()),
                "writes": n.writes,
                "max_attempts": n.retry.max_attempts,
            });
            if let Some(k) = &n.key {
                node["key"] = Value::String(k.source().to_string());
            }
            node
        })
        .collect();
    let edges: Vec<Value> = wf
        .entry
        .iter()
        .map(|e| json!({"type": "static", "from": "START", "to": e}))
        .chain(wf.edges.iter().map(|e| match e {
            Edge::Static { from, to } => json!({"type": "static", "from": from, "to": to.label()}),
            Edge::Conditional { from, branches } => json!({
                "type": "conditional",
                "from": from,
                "branches": branches.iter().map(|b| match &b.condition {
                    Some(c) => json!({"if": c.source(), "to": b.to.label()}),
                    None => json!({"else": b.to.label()}),
                }).collect::<Vec<_>>(),
            }),
            Edge::Join { from, to } => json!({"type": "join", "from": from, "to": to.label()}),
        }))
        .collect();
    let channels: Vec<Value> = wf
        .channels
        .values()
        .map(|c| {
            json!({
                "name": c.name,
                "reducer": c.reducer.as_str(),
                "schema": c.schema.as_ref().map(|s| s.source.clone()),
                "default": c.default,
            })
        })
        .collect();
    json!({
        "name": wf.name,
        "description": wf.description,
        "origin": wf.origin,
        "input_schema": wf.input_schema.as_ref().map(|s| s.source.clone()),
        "channels": channels,
        "nodes": nodes,
        "edges": edges,
        "limits": {
            "max_steps": wf.limits.max_steps,
            "concurrency": wf.limits.concurrency,
            "timeout_s": wf.limits.timeout.map(|t| t.as_secs_f64()),
        },
    })
}

pub fn text(wf: &Workflow) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "workflow {}", wf.name);
    if let Some(d) = &wf.description {
        let _ = writeln!(out, "  {}", d.trim());
    }
    let _ = writeln!(out, "\nchannels:");
    for c in wf.channels.values() {
        let _ = writeln!(out, "  {:<16} {}", c.name, c.reducer.as_str());
    }
    let _ = writeln!(out, "\nnodes:");
    for n in wf.nodes.values() {
        let mut line = format!("  {:<16} {}", n.name, n.kind.name().as_str());
        if let Some(fe) = &n.for_each {
            let _ = write!(line, "  for_each {}", fe.source());
        }
        if !n.writes.is_empty() {
            let _ = write!(line, "  writes {}", n.writes.join(", "));
        }
        if let Some(k) = &n.key {
            let _ = write!(line, " under {}", k.source());
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "\nedges:");
    for e in &wf.entry {
        let _ = writeln!(out, "  START -> {e}");
    }
    for e in &wf.edges {
        match e {
            Edge::Static { from, to } => {
                let _ = writeln!(out, "  {from} -> {}", to.label());
            }
            Edge::Conditional { from, branches } => {
                for b in branches {
                    match &b.condition {
                        Some(c) => {
                            let _ =
                                writeln!(out, "  {from} -> {}  if {}", b.to.label(), c.source());
                        }
                        None => {
                            let _ = writeln!(out, "  {from} -> {}  else", b.to.label());
                        }
                    }
                }
            }
            Edge::Join { from, to } => {
                let _ = writeln!(out, "  [{}] -> {}  (join)", from.join(", "), to.label());
            }
        }
    }
    out
}
