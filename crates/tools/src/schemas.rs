//! Input and output JSON Schemas of every tool. Inputs reject unknown fields.

use serde_json::{Value, json};

use crate::decision::Effect;
use crate::registry::ToolSpec;

fn input(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

fn output(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

fn text_output() -> Value {
    output(json!({
        "argv": {"type": "array", "items": {"type": "string"}, "description": "the git command that ran"},
        "text": {"type": "string", "description": "git's output, capped"},
        "truncated": {"type": "boolean"}
    }))
}

fn write_output() -> Value {
    output(json!({
        "path": {"type": "string", "description": "path relative to the root"},
        "action": {"enum": ["create", "modify", "delete"]},
        "bytes": {"type": "integer", "description": "size of the new content"},
        "written": {"type": "boolean", "description": "true when the disk was written (apply mode); false when recorded in the run's changeset (dry-run)"}
    }))
}

const PATH_DESC: &str = "path relative to the project root";

pub(crate) fn all() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "fs.read",
            description: "Read a UTF-8 text file (optionally a range of lines). Sees this run's earlier writes in dry-run.",
            effect: Effect::Read,
            input_schema: input(
                json!({
                    "path": {"type": "string", "minLength": 1, "description": PATH_DESC},
                    "offset": {"type": "integer", "minimum": 0, "default": 0, "description": "number of lines to skip"},
                    "limit": {"type": "integer", "minimum": 1, "description": "maximum number of lines to return (default: all)"}
                }),
                &["path"],
            ),
            output_schema: output(json!({
                "path": {"type": "string"},
                "content": {"type": "string", "description": "the selected lines, capped (a marker says so)"},
                "offset": {"type": "integer"},
                "lines": {"type": "integer", "description": "lines returned"},
                "total_lines": {"type": "integer"},
                "truncated": {"type": "boolean"},
                "source": {"enum": ["disk", "changeset"]}
            })),
        },
        ToolSpec {
            name: "fs.list",
            description: "List files under a directory (recursive, respecting .gitignore, skipping denied paths), optionally filtered by a glob relative to the root.",
            effect: Effect::Read,
            input_schema: input(
                json!({
                    "path": {"type": "string", "default": ".", "description": PATH_DESC},
                    "glob": {"type": "string", "minLength": 1, "description": "glob relative to the root, e.g. `src/**/*.rs`; without `/` it matches file names at any depth"}
                }),
                &[],
            ),
            output_schema: output(json!({
                "entries": {"type": "array", "items": {"type": "object", "properties": {
                    "path": {"type": "string"},
                    "kind": {"enum": ["file", "symlink"]},
                    "size": {"type": "integer"}
                }}},
                "truncated": {"type": "boolean"}
            })),
        },
        ToolSpec {
            name: "fs.search",
            description: "Search file contents with a regular expression (respecting .gitignore, skipping denied paths).",
            effect: Effect::Read,
            input_schema: input(
                json!({
                    "pattern": {"type": "string", "minLength": 1, "description": "regular expression (Rust regex syntax)"},
                    "path": {"type": "string", "default": ".", "description": PATH_DESC},
                    "glob": {"type": "string", "minLength": 1, "description": "only files matching this glob (as in fs.list)"}
                }),
                &["pattern"],
            ),
            output_schema: output(json!({
                "matches": {"type": "array", "items": {"type": "object", "properties": {
                    "path": {"type": "string"},
                    "line": {"type": "integer"},
                    "text": {"type": "string"}
                }}},
                "files_searched": {"type": "integer"},
                "truncated": {"type": "boolean"}
            })),
        },
        ToolSpec {
            name: "fs.write",
            description: "Write a whole file (created if missing). Dry-run: recorded in the run's changeset.",
            effect: Effect::Write,
            input_schema: input(
                json!({
                    "path": {"type": "string", "minLength": 1, "description": PATH_DESC},
                    "content": {"type": "string", "description": "the complete new content"}
                }),
                &["path", "content"],
            ),
            output_schema: write_output(),
        },
        ToolSpec {
            name: "fs.edit",
            description: "Replace one exact occurrence of `search` with `replace` in a file. Fails if the text is absent or occurs more than once.",
            effect: Effect::Write,
            input_schema: input(
                json!({
                    "path": {"type": "string", "minLength": 1, "description": PATH_DESC},
                    "search": {"type": "string", "minLength": 1, "description": "exact text to find, including whitespace; must occur exactly once"},
                    "replace": {"type": "string", "description": "replacement text"}
                }),
                &["path", "search", "replace"],
            ),
            output_schema: write_output(),
        },
        ToolSpec {
            name: "fs.delete",
            description: "Delete a file. Dry-run: recorded in the run's changeset.",
            effect: Effect::Write,
            input_schema: input(
                json!({"path": {"type": "string", "minLength": 1, "description": PATH_DESC}}),
                &["path"],
            ),
            output_schema: write_output(),
        },
        ToolSpec {
            name: "git.diff",
            description: "Show `git diff` of the working tree (or a revision range), excluding denied paths.",
            effect: Effect::Read,
            input_schema: input(
                json!({
                    "range": {"type": "string", "minLength": 1, "description": "revision or range, e.g. `HEAD~1` or `main...HEAD`"},
                    "paths": {"type": "array", "items": {"type": "string", "minLength": 1}, "description": "limit to these paths"}
                }),
                &[],
            ),
            output_schema: text_output(),
        },
        ToolSpec {
            name: "git.status",
            description: "Show `git status --porcelain=v1 --branch`.",
            effect: Effect::Read,
            input_schema: input(json!({}), &[]),
            output_schema: text_output(),
        },
        ToolSpec {
            name: "git.log",
            description: "Show commit history (hash, date, author, subject), newest first.",
            effect: Effect::Read,
            input_schema: input(
                json!({
                    "range": {"type": "string", "minLength": 1, "description": "revision or range"},
                    "max": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20, "description": "maximum number of commits"}
                }),
                &[],
            ),
            output_schema: text_output(),
        },
        ToolSpec {
            name: "git.show",
            description: "Show a commit (without `path`) or a file's content at a revision (with `path`).",
            effect: Effect::Read,
            input_schema: input(
                json!({
                    "rev": {"type": "string", "minLength": 1, "description": "revision, e.g. `HEAD` or a commit hash"},
                    "path": {"type": "string", "minLength": 1, "description": PATH_DESC}
                }),
                &["rev"],
            ),
            output_schema: text_output(),
        },
        ToolSpec {
            name: "cmd.run",
            description: "Run a command given as an argv list (never through a shell) if it starts with an allowed prefix. Dry-run: recorded as simulated unless it is read-only.",
            effect: Effect::Exec,
            input_schema: input(
                json!({
                    "argv": {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "program and arguments, e.g. [\"cargo\", \"test\"]"},
                    "timeout_s": {"type": "integer", "minimum": 1, "description": "timeout in seconds (capped by the policy)"}
                }),
                &["argv"],
            ),
            output_schema: output(json!({
                "argv": {"type": "array", "items": {"type": "string"}},
                "simulated": {"type": "boolean", "description": "true when not started (dry-run)"},
                "exit_code": {"type": ["integer", "null"]},
                "signal": {"type": ["integer", "null"]},
                "timed_out": {"type": "boolean"},
                "duration_ms": {"type": "integer"},
                "stdout": {"type": "string"},
                "stderr": {"type": "string"},
                "stdout_bytes": {"type": "integer"},
                "stderr_bytes": {"type": "integer"},
                "stdout_truncated": {"type": "boolean"},
                "stderr_truncated": {"type": "boolean"}
            })),
        },
    ]
}
