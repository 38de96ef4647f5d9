//! What `ao review` does with a [`ReviewSummary`] once the leader has written it: the
//! `--fail-on` verdict, and the text and Markdown renderings (`--format text|markdown`; the
//! Markdown is fit to paste as a pull-request comment).
//!
//! The summary's text comes from a model, so both renderings treat it as untrusted: control
//! characters (terminal escape sequences) are removed; in Markdown, characters that would make
//! markup (links, images, HTML, headings, code) are escaped and `@name` mentions are broken so
//! a comment cannot notify anyone.
//!
//! ```
//! use ao_core::types::{ReviewSummary, RiskLevel};
//! use ao_orchestrator::workflows::review_report::fail_on;
//! let summary = ReviewSummary {
//!     summary: "Adds a flag.".into(),
//!     architecture_impact: "none".into(),
//!     must_fix: vec![],
//!     should_fix: vec![],
//!     missing_tests: vec![],
//!     risk_level: RiskLevel::Medium,
//! };
//! assert!(fail_on(&summary, RiskLevel::Medium).fails);
//! assert!(!fail_on(&summary, RiskLevel::High).fails);
//! ```

use ao_core::types::{Finding, ReviewSummary, RiskLevel};

/// Whether a review reaches a `--fail-on` threshold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailOnVerdict {
    pub threshold: RiskLevel,
    pub fails: bool,
    /// One line per reason: each finding at or above the threshold, and the overall risk.
    pub reasons: Vec<String>,
}

/// A review fails the threshold when a finding (must-fix or should-fix) has a severity at or
/// above it, or when the overall risk is at or above it. `low` is the floor of the risk scale:
/// a low overall risk alone never fails a review, so `--fail-on low` fails on any finding or
/// on a medium or high risk.
pub fn fail_on(summary: &ReviewSummary, threshold: RiskLevel) -> FailOnVerdict {
    let mut reasons = Vec::new();
    for (kind, findings) in [
        ("must-fix", &summary.must_fix),
        ("should-fix", &summary.should_fix),
    ] {
        for f in findings.iter().filter(|f| f.severity >= threshold) {
            reasons.push(format!(
                "{kind} {} ({}): {}",
                place(f),
                f.severity,
                one_line(&clean(&f.issue))
            ));
        }
    }
    if summary.risk_level >= threshold && summary.risk_level > RiskLevel::Low {
        reasons.push(format!("overall risk is {}", summary.risk_level));
    }
    FailOnVerdict {
        threshold,
        fails: !reasons.is_empty(),
        reasons,
    }
}

/// The review as plain text for a terminal.
pub fn render_text(summary: &ReviewSummary, threshold: Option<RiskLevel>) -> String {
    let mut out = format!("Review: {} risk\n\n", summary.risk_level);
    out.push_str(&indent(&clean(&summary.summary), ""));
    out.push_str("\n\nArchitecture impact:\n");
    out.push_str(&indent(&clean(&summary.architecture_impact), "  "));
    out.push('\n');
    for (title, findings) in [
        ("Must fix", &summary.must_fix),
        ("Should fix", &summary.should_fix),
    ] {
        if findings.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{title} ({}):\n", findings.len()));
        for (k, f) in findings.iter().enumerate() {
            let number = format!("  {}. ", k + 1);
            let pad = " ".repeat(number.len());
            out.push_str(&format!(
                "{number}{} [{}] {}\n",
                place(f),
                f.severity,
                indent(&clean(&f.issue), &pad).trim_start()
            ));
            out.push_str(&format!(
                "{pad}why: {}\n",
                indent(&clean(&f.why), &format!("{pad}     ")).trim_start()
            ));
        }
    }
    if !summary.missing_tests.is_empty() {
        out.push_str(&format!(
            "\nMissing tests ({}):\n",
            summary.missing_tests.len()
        ));
        for t in &summary.missing_tests {
            out.push_str(&format!("  - {}\n", indent(&clean(t), "    ").trim_start()));
        }
    }
    if let Some(t) = threshold {
        out.push('\n');
        out.push_str(&verdict_text(&fail_on(summary, t)));
    }
    out
}

/// The review as GitHub-flavoured Markdown, fit to paste as a pull-request comment.
pub fn render_markdown(summary: &ReviewSummary, threshold: Option<RiskLevel>) -> String {
    let mut out = format!("## Review: **{}** risk\n\n", summary.risk_level.as_str());
    if let Some(t) = threshold {
        let v = fail_on(summary, t);
        if v.fails {
            out.push_str(&format!(
                "**Fails** the `{t}` threshold ({} {}).\n\n",
                v.reasons.len(),
                if v.reasons.len() == 1 {
                    "reason"
                } else {
                    "reasons"
                }
            ));
        } else {
            out.push_str(&format!("Passes the `{t}` threshold.\n\n"));
        }
    }
    out.push_str(&md_block(&summary.summary, ""));
    out.push_str("\n\n**Architecture impact:** ");
    out.push_str(md_block(&summary.architecture_impact, "").trim_start());
    out.push('\n');
    for (title, findings) in [
        ("Must fix", &summary.must_fix),
        ("Should fix", &summary.should_fix),
    ] {
        if findings.is_empty() {
            continue;
        }
        out.push_str(&format!("\n### {title} ({})\n\n", findings.len()));
        for (k, f) in findings.iter().enumerate() {
            let number = format!("{}. ", k + 1);
            let pad = " ".repeat(number.len());
            out.push_str(&format!(
                "{number}{} · {} — {}\n",
                code_span(&place(f)),
                f.severity,
                md_block(&f.issue, &pad).trim_start()
            ));
            out.push_str(&format!(
                "{pad}*Why:* {}\n",
                md_block(&f.why, &pad).trim_start()
            ));
        }
    }
    if !summary.missing_tests.is_empty() {
        out.push_str(&format!(
            "\n### Missing tests ({})\n\n",
            summary.missing_tests.len()
        ));
        for t in &summary.missing_tests {
            out.push_str(&format!("- {}\n", md_block(t, "  ").trim_start()));
        }
    }
    out
}

fn verdict_text(v: &FailOnVerdict) -> String {
    if !v.fails {
        return format!("Passes --fail-on {}.\n", v.threshold);
    }
    let mut out = format!("Fails --fail-on {}:\n", v.threshold);
    for r in &v.reasons {
        out.push_str(&format!("  - {r}\n"));
    }
    out
}

/// `file:line` or `file`.
fn place(f: &Finding) -> String {
    let file = one_line(&clean(&f.file));
    match f.line {
        Some(l) => format!("{file}:{l}"),
        None => file,
    }
}

/// Without control characters other than newlines and tabs; Windows line ends made `\n`.
fn clean(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Continuation lines of a multi-line text, indented by `pad`.
fn indent(s: &str, pad: &str) -> String {
    s.lines()
        .map(|l| format!("{pad}{}", l.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A code span that holds `s` whatever backticks it contains.
fn code_span(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if longest > 0 || s.starts_with(' ') || s.ends_with(' ') {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Model text as Markdown paragraphs that render as the text: each line escaped, blank lines
/// kept as paragraph breaks, continuation lines indented by `pad` (to stay in a list item).
fn md_block(s: &str, pad: &str) -> String {
    let text = clean(s);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            out.push(String::new());
        } else {
            out.push(format!("{pad}{}", md_escape(line)));
        }
    }
    out.join("\n")
}

/// Escapes the characters that start markup; a line never starts a block (heading, list,
/// quote, rule, code); `@name` gets a zero-width space so it mentions no one.
fn md_escape(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut prev: Option<char> = None;
    for (i, c) in line.chars().enumerate() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '-' | '+' | '=' | '.' | ')' if i == 0 || (i <= 10 && starts_ordered(line, i)) => {
                out.push('\\');
                out.push(c);
            }
            '@' if !prev.is_some_and(|p| p.is_alphanumeric()) => {
                out.push('@');
                out.push('\u{200B}');
            }
            _ => out.push(c),
        }
        prev = Some(c);
    }
    out
}

/// Whether `line[..i]` is all digits and `i` is where an ordered-list marker (`1.`, `1)`) ends.
fn starts_ordered(line: &str, i: usize) -> bool {
    let head: String = line.chars().take(i).collect();
    !head.is_empty()
        && head.chars().all(|c| c.is_ascii_digit())
        && matches!(line.chars().nth(i), Some('.') | Some(')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(file: &str, line: Option<u64>, severity: RiskLevel, issue: &str) -> Finding {
        Finding {
            file: file.into(),
            line,
            severity,
            issue: issue.into(),
            why: "because".into(),
        }
    }

    fn summary(risk: RiskLevel, must: Vec<Finding>, should: Vec<Finding>) -> ReviewSummary {
        ReviewSummary {
            summary: "Adds a retry loop to the HTTP client.".into(),
            architecture_impact: "The client now owns retries.".into(),
            must_fix: must,
            should_fix: should,
            missing_tests: vec!["retry after a 429".into()],
            risk_level: risk,
        }
    }

    #[test]
    fn fail_on_compares_findings_and_risk_with_the_threshold() {
        use RiskLevel::{High, Low, Medium};
        let clean_low = summary(Low, vec![], vec![]);
        for t in [Low, Medium, High] {
            assert!(
                !fail_on(&clean_low, t).fails,
                "a clean low-risk review passes {t}"
            );
        }
        let high_risk = summary(High, vec![], vec![]);
        for t in [Low, Medium, High] {
            let v = fail_on(&high_risk, t);
            assert!(v.fails, "{t}");
            assert_eq!(v.reasons, ["overall risk is high"]);
        }
        let medium_finding = summary(
            Low,
            vec![],
            vec![finding("src/a.rs", Some(12), Medium, "unbounded loop")],
        );
        assert!(fail_on(&medium_finding, Low).fails);
        assert!(fail_on(&medium_finding, Medium).fails);
        assert!(!fail_on(&medium_finding, High).fails);
        assert_eq!(
            fail_on(&medium_finding, Medium).reasons,
            ["should-fix src/a.rs:12 (medium): unbounded loop"]
        );
        let low_must = summary(
            Medium,
            vec![finding("b.rs", None, Low, "typo\nin a name")],
            vec![],
        );
        let v = fail_on(&low_must, Low);
        assert_eq!(
            v.reasons,
            [
                "must-fix b.rs (low): typo in a name",
                "overall risk is medium"
            ]
        );
        assert!(!fail_on(&low_must, High).fails);
        assert_eq!(fail_on(&low_must, High).threshold, High);
    }

    #[test]
    fn text_rendering_lists_everything_and_the_verdict() {
        let s = summary(
            RiskLevel::High,
            vec![finding(
                "src/http.rs",
                Some(88),
                RiskLevel::High,
                "retries POST requests\nwhich are not idempotent",
            )],
            vec![finding(
                "src/http.rs",
                None,
                RiskLevel::Low,
                "name the constant",
            )],
        );
        let text = render_text(&s, Some(RiskLevel::High));
        assert_eq!(
            text,
            "Review: high risk\n\n\
             Adds a retry loop to the HTTP client.\n\n\
             Architecture impact:\n  The client now owns retries.\n\n\
             Must fix (1):\n\
             \x20 1. src/http.rs:88 [high] retries POST requests\n\
             \x20    which are not idempotent\n\
             \x20    why: because\n\n\
             Should fix (1):\n\
             \x20 1. src/http.rs [low] name the constant\n\
             \x20    why: because\n\n\
             Missing tests (1):\n  - retry after a 429\n\n\
             Fails --fail-on high:\n\
             \x20 - must-fix src/http.rs:88 (high): retries POST requests which are not idempotent\n\
             \x20 - overall risk is high\n"
        );
        let passing = render_text(
            &summary(RiskLevel::Low, vec![], vec![]),
            Some(RiskLevel::Low),
        );
        assert!(passing.ends_with("Passes --fail-on low.\n"));
        assert!(!passing.contains("Must fix"));
    }

    #[test]
    fn text_rendering_removes_terminal_escapes() {
        let mut s = summary(RiskLevel::Low, vec![], vec![]);
        s.summary = "ok\x1b[2J\x1b]0;pwned\x07 done".into();
        let text = render_text(&s, None);
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(text.contains("ok[2J]0;pwned done"));
    }

    #[test]
    fn markdown_rendering_is_a_pull_request_comment() {
        let s = summary(
            RiskLevel::Medium,
            vec![finding(
                "src/http.rs",
                Some(88),
                RiskLevel::High,
                "retries POST requests",
            )],
            vec![],
        );
        let md = render_markdown(&s, Some(RiskLevel::High));
        assert_eq!(
            md,
            "## Review: **medium** risk\n\n\
             **Fails** the `high` threshold (1 reason).\n\n\
             Adds a retry loop to the HTTP client.\n\n\
             **Architecture impact:** The client now owns retries.\n\n\
             ### Must fix (1)\n\n\
             1. `src/http.rs:88` · high — retries POST requests\n\
             \x20  *Why:* because\n\n\
             ### Missing tests (1)\n\n\
             - retry after a 429\n"
        );
        let passing = render_markdown(&s, None);
        assert!(!passing.contains("threshold"));
        assert!(
            render_markdown(
                &summary(RiskLevel::Low, vec![], vec![]),
                Some(RiskLevel::Low)
            )
            .contains("Passes the `low` threshold.")
        );
    }

    #[test]
    fn markdown_escapes_what_a_model_could_inject() {
        let mut s = summary(
            RiskLevel::Low,
            vec![finding(
                "src/`odd`.rs",
                Some(1),
                RiskLevel::Low,
                "![x](https://tracker.invalid/p.png) <img src=x onerror=alert(1)> cc @octocat",
            )],
            vec![],
        );
        s.summary = "# Heading\n- item\n1. one\n> quote\n```\ncode\n```\n    indented".into();
        let md = render_markdown(&s, None);
        assert!(
            md.contains(
                "\\# Heading\n\\- item\n1\\. one\n\\> quote\n\\`\\`\\`\ncode\n\\`\\`\\`\nindented"
            ),
            "{md}"
        );
        assert!(md.contains("\\!\\[x\\](https://tracker.invalid/p.png) \\<img src=x onerror=alert(1)\\> cc @\u{200B}octocat"), "{md}");
        assert!(md.contains("`` src/`odd`.rs:1 ``"), "{md}");
        assert!(
            md.match_indices(['<', '>', '[', '!'])
                .all(|(i, _)| i > 0 && md.as_bytes()[i - 1] == b'\\'),
            "every markup character is escaped: {md}"
        );
        // An e-mail address is not a mention and stays as it is.
        assert_eq!(md_escape("dev@example.invalid"), "dev@example.invalid");
    }

    #[test]
    fn multi_line_findings_stay_inside_their_list_item() {
        let s = summary(
            RiskLevel::Low,
            vec![],
            vec![Finding {
                file: "a.rs".into(),
                line: None,
                severity: RiskLevel::Low,
                issue: "first line\n\nsecond paragraph".into(),
                why: "w1\nw2".into(),
            }],
        );
        let md = render_markdown(&s, None);
        assert!(
            md.contains(
                "1. `a.rs` · low — first line\n\n   second paragraph\n   *Why:* w1\n   w2\n"
            ),
            "{md}"
        );
    }
}
