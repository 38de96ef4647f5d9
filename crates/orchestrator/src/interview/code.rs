//! Rules about source code in a model's reply that substrings cannot fool.
//!
//! "Uses `any` as a type" must find `x: any` and `Array<any>` but not the word "company", a
//! `// any` comment or the string `"any"`. So the code is first cut into tokens by a small
//! lexer per language that knows where strings, template literals, regular-expression
//! literals, comments, raw strings, char literals and lifetimes begin and end; the rules then
//! look at identifiers and punctuation only. The lexers are deliberately small: they do not
//! parse, they only make sure nothing inside a string or comment is mistaken for code. A
//! string or comment that never ends is reported as such (the `balanced` rule fails on it).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Languages the code rules can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Typescript,
    Javascript,
    Rust,
    Python,
}

/// What a code rule looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CodeRuleKind {
    /// `any` used as a type (TypeScript): `: any`, `<any>`, `as any`, `any[]`, `Array<any>`,
    /// `| any`, `Record<string, any>`, `type T = any`.
    AnyType,
    /// Brackets match and every string and comment ends. Only `present: true` makes sense.
    Balanced,
    /// A call of the function, method or macro `name` (`name(`, `.name(`, `name!(`).
    Call,
    /// The identifier `name` anywhere in code (not in strings or comments).
    Identifier,
    /// A definition of the function `name` (`function name`, `const name =`, `fn name`,
    /// `def name`).
    DefinesFunction,
}

/// One token of code. Strings, comments and the like are dropped; a placeholder keeps their
/// place where it matters for the next token's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Punct(&'static str),
    Number,
    /// A string, template or regex literal, or a Rust char literal.
    Literal,
    /// A Rust lifetime (`'a`).
    Lifetime,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: u32,
}

/// Code cut into tokens, or the reason it could not be.
struct Lexed {
    tokens: Vec<Token>,
    error: Option<String>,
}

const PUNCT: &[&str] = &[
    "...", "=>", "->", "::", "?.", "(", ")", "[", "]", "{", "}", "<", ">", ",", ";", ":", ".", "=",
    "|", "&", "!", "?", "+", "-", "*", "/", "%", "^", "~", "@", "#", "$",
];

/// Template literals can nest; an adversarial reply must not exhaust the stack.
const MAX_TEMPLATE_DEPTH: usize = 32;

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: u32,
    lang: Language,
    tokens: Vec<Token>,
}

impl Lexer {
    fn new(src: &str, lang: Language) -> Self {
        Lexer {
            chars: src.chars().collect(),
            at: 0,
            line: 1,
            lang,
            tokens: Vec::new(),
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.at).copied()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, line: u32) {
        self.tokens.push(Token { tok, line });
    }

    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek(i) == Some(c))
    }

    fn is_c_like(&self) -> bool {
        matches!(
            self.lang,
            Language::Typescript | Language::Javascript | Language::Rust
        )
    }

    fn is_js(&self) -> bool {
        matches!(self.lang, Language::Typescript | Language::Javascript)
    }

    /// Lexes code until the end, or (inside a template's `${…}`) until the `}` that closes it.
    fn code(&mut self, depth: usize) -> Result<(), String> {
        let mut braces = 0usize;
        while let Some(c) = self.peek(0) {
            let line = self.line;
            if c.is_whitespace() {
                self.bump();
            } else if self.is_c_like() && self.starts_with("//") {
                while let Some(c) = self.peek(0) {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else if self.is_c_like() && self.starts_with("/*") {
                self.block_comment()?;
            } else if self.lang == Language::Python && c == '#' {
                while let Some(c) = self.peek(0) {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
            } else if depth > 0 && c == '}' && braces == 0 {
                self.bump();
                return Ok(());
            } else if c == '"' || (c == '\'' && self.lang != Language::Rust) {
                self.string(c)?;
                self.push(Tok::Literal, line);
            } else if c == '\'' {
                self.rust_quote()?;
            } else if c == '`' && self.is_js() {
                self.template(depth)?;
                self.push(Tok::Literal, line);
            } else if c == '/' && self.is_js() && self.regex_allowed() {
                self.regex_literal()?;
                self.push(Tok::Literal, line);
            } else if is_ident_start(c) {
                if self.prefixed_string()? {
                    self.push(Tok::Literal, line);
                    continue;
                }
                let mut word = String::new();
                while let Some(c) = self.peek(0).filter(|c| is_ident_char(*c)) {
                    word.push(c);
                    self.bump();
                }
                self.push(Tok::Ident(word), line);
            } else if c.is_ascii_digit() {
                while let Some(c) = self.peek(0).filter(|c| c.is_alphanumeric() || *c == '_') {
                    let _ = c;
                    self.bump();
                    // A decimal point belongs to the number; `1..n` (a range) does not.
                    if self.peek(0) == Some('.') && self.peek(1).is_some_and(|d| d.is_ascii_digit())
                    {
                        self.bump();
                    }
                }
                self.push(Tok::Number, line);
            } else {
                let p = PUNCT.iter().find(|p| self.starts_with(p)).copied();
                let p = p.unwrap_or("#");
                for _ in 0..p.chars().count().max(1) {
                    self.bump();
                }
                if p == "{" {
                    braces += 1;
                } else if p == "}" {
                    braces = braces.saturating_sub(1);
                }
                self.push(Tok::Punct(p), line);
            }
        }
        if depth > 0 {
            return Err("a template literal's `${` is never closed".into());
        }
        Ok(())
    }

    fn block_comment(&mut self) -> Result<(), String> {
        let start = self.line;
        self.bump();
        self.bump();
        // Rust block comments nest; JavaScript's do not.
        let nests = self.lang == Language::Rust;
        let mut depth = 1;
        while depth > 0 {
            if self.starts_with("*/") {
                self.bump();
                self.bump();
                depth -= 1;
            } else if nests && self.starts_with("/*") {
                self.bump();
                self.bump();
                depth += 1;
            } else if self.bump().is_none() {
                return Err(format!("the comment opened on line {start} never ends"));
            }
        }
        Ok(())
    }

    /// A quoted string; the opening quote is at the cursor.
    fn string(&mut self, quote: char) -> Result<(), String> {
        let start = self.line;
        let triple = self.lang == Language::Python && {
            let q: String = [quote; 3].iter().collect();
            self.starts_with(&q)
        };
        let n = if triple { 3 } else { 1 };
        for _ in 0..n {
            self.bump();
        }
        // Rust strings may span lines; JavaScript and single-quoted Python ones may not.
        let multiline = triple || self.lang == Language::Rust;
        loop {
            match self.bump() {
                None => return Err(format!("the string opened on line {start} never ends")),
                Some('\\') => {
                    self.bump();
                }
                Some('\n') if !multiline => {
                    return Err(format!("the string opened on line {start} never ends"));
                }
                Some(c) if c == quote => {
                    if !triple {
                        return Ok(());
                    }
                    if self.peek(0) == Some(quote) && self.peek(1) == Some(quote) {
                        self.bump();
                        self.bump();
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Python string prefixes (`r"…"`, `b'…'`, `f"""…"""`) and Rust raw/byte/C strings
    /// (`r#"…"#`, `b"…"`, `br"…"`, `b'x'`). Returns whether one was read.
    fn prefixed_string(&mut self) -> Result<bool, String> {
        let mut prefix = String::new();
        let mut i = 0;
        while let Some(c) = self.peek(i).filter(|c| c.is_ascii_alphabetic()) {
            prefix.push(c);
            i += 1;
            if i > 2 {
                return Ok(false);
            }
        }
        let next = self.peek(i);
        let start = self.line;
        match self.lang {
            Language::Python => {
                let ok = !prefix.is_empty()
                    && prefix
                        .chars()
                        .all(|c| matches!(c.to_ascii_lowercase(), 'r' | 'b' | 'u' | 'f'));
                if let (true, Some(q @ ('"' | '\''))) = (ok, next) {
                    for _ in 0..i {
                        self.bump();
                    }
                    self.string(q)?;
                    return Ok(true);
                }
                Ok(false)
            }
            Language::Rust => {
                let raw = matches!(prefix.as_str(), "r" | "br" | "cr");
                if raw && matches!(next, Some('"' | '#')) {
                    let mut hashes = 0;
                    while self.peek(i + hashes) == Some('#') {
                        hashes += 1;
                    }
                    if self.peek(i + hashes) != Some('"') {
                        return Ok(false);
                    }
                    for _ in 0..i + hashes + 1 {
                        self.bump();
                    }
                    let close: String = std::iter::once('"')
                        .chain(std::iter::repeat_n('#', hashes))
                        .collect();
                    loop {
                        if self.starts_with(&close) {
                            for _ in 0..close.len() {
                                self.bump();
                            }
                            return Ok(true);
                        }
                        if self.bump().is_none() {
                            return Err(format!(
                                "the raw string opened on line {start} never ends"
                            ));
                        }
                    }
                }
                if matches!(prefix.as_str(), "b" | "c") && next == Some('"') {
                    self.bump();
                    self.string('"')?;
                    return Ok(true);
                }
                if prefix == "b" && next == Some('\'') {
                    self.bump();
                    self.rust_quote()?;
                    return Ok(true);
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// A Rust `'`: a char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime (`'a`).
    fn rust_quote(&mut self) -> Result<(), String> {
        let line = self.line;
        let one = self.peek(1);
        let two = self.peek(2);
        if one == Some('\\') {
            self.bump();
            self.bump();
            self.bump();
            loop {
                match self.bump() {
                    Some('\'') => break,
                    Some('\n') | None => {
                        return Err(format!("the char literal on line {line} never ends"));
                    }
                    Some(_) => {}
                }
            }
            self.push(Tok::Literal, line);
        } else if two == Some('\'') {
            self.bump();
            self.bump();
            self.bump();
            self.push(Tok::Literal, line);
        } else {
            self.bump();
            while self.peek(0).is_some_and(is_ident_char) {
                self.bump();
            }
            self.push(Tok::Lifetime, line);
        }
        Ok(())
    }

    /// A template literal; `${…}` inside it is code and is lexed as such.
    fn template(&mut self, depth: usize) -> Result<(), String> {
        if depth >= MAX_TEMPLATE_DEPTH {
            return Err("template literals nest too deeply".into());
        }
        let start = self.line;
        self.bump();
        loop {
            match self.bump() {
                None => {
                    return Err(format!(
                        "the template literal opened on line {start} never ends"
                    ));
                }
                Some('\\') => {
                    self.bump();
                }
                Some('`') => return Ok(()),
                Some('$') if self.peek(0) == Some('{') => {
                    self.bump();
                    self.code(depth + 1)?;
                }
                Some(_) => {}
            }
        }
    }

    /// Whether a `/` here starts a regular expression rather than a division: after an
    /// operator, an opening bracket, a keyword like `return`, or at the start.
    fn regex_allowed(&self) -> bool {
        match self.tokens.last().map(|t| &t.tok) {
            None => true,
            Some(Tok::Punct(p)) => !matches!(*p, ")" | "]" | "}"),
            Some(Tok::Ident(w)) => matches!(
                w.as_str(),
                "return"
                    | "typeof"
                    | "case"
                    | "do"
                    | "else"
                    | "in"
                    | "of"
                    | "new"
                    | "delete"
                    | "void"
                    | "throw"
                    | "instanceof"
                    | "yield"
                    | "await"
            ),
            Some(_) => false,
        }
    }

    fn regex_literal(&mut self) -> Result<(), String> {
        let start = self.line;
        self.bump();
        let mut in_class = false;
        loop {
            match self.bump() {
                None | Some('\n') => {
                    return Err(format!("the regular expression on line {start} never ends"));
                }
                Some('\\') => {
                    self.bump();
                }
                Some('[') => in_class = true,
                Some(']') => in_class = false,
                Some('/') if !in_class => break,
                Some(_) => {}
            }
        }
        while self.peek(0).is_some_and(|c| c.is_ascii_alphabetic()) {
            self.bump();
        }
        Ok(())
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c == '$' || c.is_alphanumeric()
}

fn lex(src: &str, lang: Language) -> Lexed {
    let mut lexer = Lexer::new(src, lang);
    let error = lexer.code(0).err();
    Lexed {
        tokens: lexer.tokens,
        error,
    }
}

/// Removes one Markdown code fence around the code, if the reply put one there.
fn strip_fence(code: &str) -> &str {
    let t = code.trim();
    if let Some(rest) = t.strip_prefix("```") {
        let body = match rest.find('\n') {
            Some(i) => &rest[i + 1..],
            None => return code,
        };
        if let Some(inner) = body.trim_end().strip_suffix("```") {
            return inner;
        }
    }
    code
}

/// What a rule found: whether it found its target, and a line to point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFinding {
    pub found: bool,
    pub detail: String,
}

/// A compiled code rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRule {
    pub language: Language,
    pub kind: CodeRuleKind,
    pub name: Option<String>,
}

impl CodeRule {
    /// Checks the rule is meaningful: a name where one is needed, none where it is not, and
    /// `any-type` only for TypeScript.
    pub fn new(
        language: Language,
        kind: CodeRuleKind,
        name: Option<String>,
    ) -> Result<Self, String> {
        let needs_name = matches!(
            kind,
            CodeRuleKind::Call | CodeRuleKind::Identifier | CodeRuleKind::DefinesFunction
        );
        match (&name, needs_name) {
            (None, true) => return Err(format!("code rule `{}` needs a `name`", kind_name(kind))),
            (Some(_), false) => {
                return Err(format!("code rule `{}` takes no `name`", kind_name(kind)));
            }
            (Some(n), true) if !n.chars().all(is_ident_char) || n.is_empty() => {
                return Err(format!("`{n}` is not an identifier"));
            }
            _ => {}
        }
        if kind == CodeRuleKind::AnyType && language != Language::Typescript {
            return Err("code rule `any-type` applies to typescript only".into());
        }
        Ok(CodeRule {
            language,
            kind,
            name,
        })
    }

    /// Looks for the rule's target in `code` (a Markdown fence around it is ignored).
    pub fn find(&self, code: &str) -> CodeFinding {
        let lexed = lex(strip_fence(code), self.language);
        let t = &lexed.tokens;
        let name = self.name.as_deref().unwrap_or("");
        let hit = |line: u32, what: String| CodeFinding {
            found: true,
            detail: format!("{what} on line {line}"),
        };
        let miss = |what: String| CodeFinding {
            found: false,
            detail: what,
        };
        match self.kind {
            CodeRuleKind::Balanced => match lexed.error.or_else(|| unbalanced(t)) {
                None => CodeFinding {
                    found: true,
                    detail: "brackets, strings and comments are balanced".into(),
                },
                Some(why) => miss(why),
            },
            CodeRuleKind::AnyType => match any_type_positions(t).first() {
                Some(line) => hit(*line, "`any` used as a type".into()),
                None => miss("no `any` used as a type".into()),
            },
            CodeRuleKind::Identifier => match t.iter().find(|x| is_ident(&x.tok, name)) {
                Some(x) => hit(x.line, format!("identifier `{name}`")),
                None => miss(format!("no identifier `{name}` in code")),
            },
            CodeRuleKind::Call => match find_call(t, name) {
                Some(line) => hit(line, format!("call of `{name}`")),
                None => miss(format!("no call of `{name}`")),
            },
            CodeRuleKind::DefinesFunction => match find_definition(t, name, self.language) {
                Some(line) => hit(line, format!("definition of `{name}`")),
                None => miss(format!("no definition of function `{name}`")),
            },
        }
    }
}

pub fn kind_name(kind: CodeRuleKind) -> &'static str {
    match kind {
        CodeRuleKind::AnyType => "any-type",
        CodeRuleKind::Balanced => "balanced",
        CodeRuleKind::Call => "call",
        CodeRuleKind::Identifier => "identifier",
        CodeRuleKind::DefinesFunction => "defines-function",
    }
}

fn is_ident(tok: &Tok, name: &str) -> bool {
    matches!(tok, Tok::Ident(w) if w == name)
}

fn is_punct(tok: Option<&Token>, p: &str) -> bool {
    matches!(tok.map(|t| &t.tok), Some(Tok::Punct(q)) if *q == p)
}

fn unbalanced(tokens: &[Token]) -> Option<String> {
    let mut stack: Vec<(&str, u32)> = Vec::new();
    for t in tokens {
        let Tok::Punct(p) = t.tok else { continue };
        match p {
            "(" | "[" | "{" => stack.push((p, t.line)),
            ")" | "]" | "}" => {
                let want = match p {
                    ")" => "(",
                    "]" => "[",
                    _ => "{",
                };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    Some((open, line)) => {
                        return Some(format!(
                            "`{p}` on line {} closes `{open}` from line {line}",
                            t.line
                        ));
                    }
                    None => return Some(format!("`{p}` on line {} closes nothing", t.line)),
                }
            }
            _ => {}
        }
    }
    stack
        .last()
        .map(|(open, line)| format!("`{open}` on line {line} is never closed"))
}

/// Lines where `any` stands in a type position.
fn any_type_positions(tokens: &[Token]) -> Vec<u32> {
    let mut lines = Vec::new();
    // Depth of `<…>` type-argument lists, so `Record<string, any>` is seen through the comma.
    let mut angle = 0usize;
    // Inside `type Name … =` up to the `;` that ends the alias.
    let mut alias_pending = false;
    // Bracket depth, and the depth at which a type annotation (`x: T`) began: an annotation
    // ends at a `=`, `,` or `;` at its own depth or at a bracket that closes below it, so
    // `let f: (x: number) => any` is a type and `const g = (x: number) => any` is not.
    let mut depth = 0usize;
    let mut annotation: Option<usize> = None;
    for (i, t) in tokens.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| tokens.get(j));
        match &t.tok {
            Tok::Punct("(" | "[") => depth += 1,
            Tok::Punct(")" | "]") => {
                depth = depth.saturating_sub(1);
                if annotation.is_some_and(|a| depth < a) {
                    annotation = None;
                }
            }
            Tok::Punct(":") if annotation.is_none_or(|a| depth < a) => {
                annotation = Some(depth);
            }
            Tok::Punct("=" | ",") if annotation == Some(depth) && angle == 0 => {
                annotation = None;
            }
            _ => {}
        }
        match &t.tok {
            Tok::Punct("<") => {
                let opens_list = matches!(
                    prev.map(|p| &p.tok),
                    None | Some(Tok::Ident(_)) | Some(Tok::Punct("(" | "=" | ":" | "," | "<"))
                );
                if opens_list {
                    angle += 1;
                }
            }
            Tok::Punct(">") => angle = angle.saturating_sub(1),
            Tok::Punct(";" | "{" | "}") => {
                angle = 0;
                alias_pending = false;
                annotation = None;
            }
            Tok::Ident(w) if w == "type" => {
                if matches!(tokens.get(i + 1).map(|n| &n.tok), Some(Tok::Ident(_))) {
                    alias_pending = true;
                }
            }
            Tok::Ident(w) if w == "any" => {
                let before = prev.map(|p| &p.tok);
                let typed_by_prev = match before {
                    Some(Tok::Punct(":" | "<" | "|" | "&")) => true,
                    Some(Tok::Punct(",")) => angle > 0,
                    Some(Tok::Punct("=")) => alias_pending,
                    Some(Tok::Punct("=>")) => angle > 0 || alias_pending || annotation.is_some(),
                    Some(Tok::Ident(k)) => {
                        matches!(k.as_str(), "as" | "satisfies" | "extends" | "keyof")
                    }
                    _ => false,
                };
                // `any[]` is only ever a type: as an expression it would not parse.
                let array_type =
                    is_punct(tokens.get(i + 1), "[") && is_punct(tokens.get(i + 2), "]");
                // `obj.any` is a property, never a type.
                let property = is_punct(prev, ".") || is_punct(prev, "?.");
                if (typed_by_prev || array_type) && !property {
                    lines.push(t.line);
                }
            }
            _ => {}
        }
    }
    lines
}

fn find_call(tokens: &[Token], name: &str) -> Option<u32> {
    for (i, t) in tokens.iter().enumerate() {
        if !is_ident(&t.tok, name) {
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| tokens.get(j));
        let defining = matches!(
            prev.map(|p| &p.tok),
            Some(Tok::Ident(k)) if matches!(k.as_str(), "fn" | "function" | "def")
        );
        if defining {
            continue;
        }
        let mut j = i + 1;
        // A Rust macro (`panic!(`), or a turbofish (`parse::<u32>(`).
        if is_punct(tokens.get(j), "!") {
            j += 1;
            if matches!(
                tokens.get(j).map(|n| &n.tok),
                Some(Tok::Punct("(" | "[" | "{"))
            ) {
                return Some(t.line);
            }
            continue;
        }
        if is_punct(tokens.get(j), "::") && is_punct(tokens.get(j + 1), "<") {
            let mut depth = 0usize;
            j += 1;
            while let Some(n) = tokens.get(j) {
                match n.tok {
                    Tok::Punct("<") => depth += 1,
                    Tok::Punct(">") => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            j += 1;
                            break;
                        }
                    }
                    Tok::Punct(";" | "{" | "}") => break,
                    _ => {}
                }
                j += 1;
            }
        }
        if is_punct(tokens.get(j), "(") {
            return Some(t.line);
        }
    }
    None
}

fn find_definition(tokens: &[Token], name: &str, lang: Language) -> Option<u32> {
    for (i, t) in tokens.iter().enumerate() {
        if !is_ident(&t.tok, name) {
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| tokens.get(j)).map(|p| &p.tok);
        let prev2 = i.checked_sub(2).and_then(|j| tokens.get(j)).map(|p| &p.tok);
        let kw = |k: &str| matches!(prev, Some(Tok::Ident(w)) if w == k);
        let found = match lang {
            Language::Rust => kw("fn"),
            Language::Python => kw("def"),
            Language::Typescript | Language::Javascript => {
                // `function name`, `function* name`, or `const name = …` / `let name: T = …`.
                kw("function")
                    || (matches!(prev, Some(Tok::Punct("*")))
                        && matches!(prev2, Some(Tok::Ident(w)) if w == "function"))
                    || ((kw("const") || kw("let") || kw("var"))
                        && matches!(
                            tokens.get(i + 1).map(|n| &n.tok),
                            Some(Tok::Punct("=" | ":"))
                        ))
            }
        };
        if found {
            return Some(t.line);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_type(code: &str) -> bool {
        CodeRule::new(Language::Typescript, CodeRuleKind::AnyType, None)
            .unwrap()
            .find(code)
            .found
    }

    fn rule(lang: Language, kind: CodeRuleKind, name: &str, code: &str) -> CodeFinding {
        let name = (!name.is_empty()).then(|| name.to_string());
        CodeRule::new(lang, kind, name).unwrap().find(code)
    }

    #[test]
    fn any_in_every_type_position_is_found() {
        for code in [
            "function f(x: any) {}",
            "let v = <any>window;",
            "const y = x as any;",
            "let list: any[] = [];",
            "const a: Array<any> = [];",
            "type T = string | any;",
            "type U = any;",
            "type M<K> = Record<K, any>;",
            "const m: Map<string, any> = new Map();",
            "function g(): Promise<any> { return p; }",
            "let f: (x: number) => any;",
            "function h<T extends any>(t: T) {}",
            "let s = v satisfies any;",
            "interface I {\n  field?: any;\n}",
            "const t = `${(x as any).y}`;",
        ] {
            assert!(any_type(code), "should be found: {code}");
        }
    }

    #[test]
    fn any_as_a_word_a_comment_a_string_or_a_property_is_not_a_type() {
        for code in [
            "const company = 'Acme';",
            "// any value will do\nconst x: unknown = 1;",
            "/* accepts any input: */ function f(x: unknown) {}",
            "const s = \"x: any\";",
            "const t = 'as any';",
            "const u = `type: any ${company}`;",
            "if (list.any(x => x > 1)) {}",
            "const anyValue: string = 'a';",
            "const re = /: any/g;",
            "const manyThings: number[] = [];",
            "items.some(isAny);",
            "const g = (x: number) => any;",
            "let y: number = any;",
            "const r = items.map((x: number) => any);",
        ] {
            assert!(!any_type(code), "should not be found: {code}");
        }
    }

    #[test]
    fn division_is_not_mistaken_for_a_regex() {
        // If `/ 2 /` were read as a regex, the `any` after it would vanish.
        assert!(any_type("const half = total / 2 / count; let x: any;"));
        assert!(any_type("const r = (a) / b; const y = z as any;"));
    }

    #[test]
    fn balanced_catches_open_brackets_and_unterminated_strings() {
        let ok = rule(
            Language::Typescript,
            CodeRuleKind::Balanced,
            "",
            "function f() { return [1, (2)]; } // )",
        );
        assert!(ok.found, "{}", ok.detail);
        for (code, why) in [
            ("function f() { return 1;", "never closed"),
            ("f(]);", "closes `(`"),
            ("const s = \"open;\n", "never ends"),
            ("/* comment", "never ends"),
            ("const t = `a ${b`;", "never"),
            ("}", "closes nothing"),
        ] {
            let f = rule(Language::Typescript, CodeRuleKind::Balanced, "", code);
            assert!(!f.found, "{code}");
            assert!(f.detail.contains(why), "{code}: {}", f.detail);
        }
        let strings_hide_brackets = rule(
            Language::Rust,
            CodeRuleKind::Balanced,
            "",
            "fn f() -> &'static str { r#\"{ \"(\" \"#; '{'; \"}\" }",
        );
        assert!(
            strings_hide_brackets.found,
            "{}",
            strings_hide_brackets.detail
        );
        let py = rule(
            Language::Python,
            CodeRuleKind::Balanced,
            "",
            "def f():\n    return '''(\n['''  # )\n",
        );
        assert!(py.found, "{}", py.detail);
    }

    #[test]
    fn calls_are_found_in_code_only() {
        let r = |code| rule(Language::Rust, CodeRuleKind::Call, "unwrap", code).found;
        assert!(r("let x = y.unwrap();"));
        assert!(r("let x = y\n    .unwrap ();"));
        assert!(!r("let x = y.unwrap_or(0);"));
        assert!(!r("// never .unwrap() here\nlet s = \".unwrap()\";"));
        assert!(!r("fn unwrap() {}"), "a definition is not a call");
        let m = |code| rule(Language::Rust, CodeRuleKind::Call, "panic", code).found;
        assert!(m("if bad { panic!(\"no\") }"));
        assert!(!m("let panic = 1;"));
        let t = |code| rule(Language::Rust, CodeRuleKind::Call, "parse", code).found;
        assert!(t("let n = s.parse::<u32>()?;"));
        let py = |code| rule(Language::Python, CodeRuleKind::Call, "eval", code).found;
        assert!(py("x = eval(text)"));
        assert!(!py("# eval(text)\nx = 'eval(1)'\nevaluate(x)"));
        assert!(!py("x = f\"{eval}\" + r'eval('"));
    }

    #[test]
    fn lifetimes_and_char_literals_are_told_apart() {
        // A lifetime must not open a char literal that would swallow `unwrap()`.
        let code = "fn f<'a>(s: &'a str) -> char { s.chars().next().unwrap() }";
        assert!(rule(Language::Rust, CodeRuleKind::Call, "unwrap", code).found);
        let code = "let q = '\\''; let c = '('; x.unwrap();";
        assert!(rule(Language::Rust, CodeRuleKind::Call, "unwrap", code).found);
        assert!(rule(Language::Rust, CodeRuleKind::Balanced, "", code).found);
    }

    #[test]
    fn definitions_are_recognised_per_language() {
        let d = |lang, code| rule(lang, CodeRuleKind::DefinesFunction, "parse", code).found;
        assert!(d(
            Language::Typescript,
            "export function parse(s: string) {}"
        ));
        assert!(d(
            Language::Typescript,
            "export const parse = (s: string) => 1;"
        ));
        assert!(d(
            Language::Typescript,
            "const parse: (s: string) => number = f;"
        ));
        assert!(!d(Language::Typescript, "parse(s); // function parse"));
        assert!(!d(Language::Typescript, "const s = 'function parse';"));
        assert!(d(Language::Rust, "pub fn parse(s: &str) {}"));
        assert!(!d(Language::Rust, "let parse = 1;"));
        assert!(d(Language::Python, "def parse(s):\n    pass"));
        assert!(!d(Language::Python, "# def parse(s):\nparse(1)"));
    }

    #[test]
    fn identifiers_ignore_strings_comments_and_longer_words() {
        let i = |code| {
            rule(
                Language::Typescript,
                CodeRuleKind::Identifier,
                "unknown",
                code,
            )
        };
        assert!(i("function f(x: unknown) {}").found);
        assert!(!i("// unknown\nconst s = 'unknown'; const unknownish = 1;").found);
    }

    #[test]
    fn a_fence_around_the_code_is_ignored() {
        assert!(any_type("```ts\nlet x: any;\n```"));
        let f = rule(
            Language::Typescript,
            CodeRuleKind::Balanced,
            "",
            "```typescript\nfunction f() {}\n```\n",
        );
        assert!(f.found, "{}", f.detail);
    }

    #[test]
    fn meaningless_rules_are_refused() {
        assert!(CodeRule::new(Language::Rust, CodeRuleKind::AnyType, None).is_err());
        assert!(CodeRule::new(Language::Rust, CodeRuleKind::Call, None).is_err());
        assert!(CodeRule::new(Language::Rust, CodeRuleKind::Balanced, Some("x".into())).is_err());
        assert!(CodeRule::new(Language::Rust, CodeRuleKind::Call, Some("a b".into())).is_err());
    }

    #[test]
    fn deeply_nested_templates_fail_cleanly() {
        let code = "`${".repeat(200);
        let f = rule(Language::Typescript, CodeRuleKind::Balanced, "", &code);
        assert!(!f.found);
    }
}
