//! SQL text as SQLite reads it: a tokenizer following SQLite's lexical rules, a normaliser built
//! on it (so that the same schema written differently compares equal), and a small structural
//! parse of `CREATE TABLE` and `CREATE INDEX` for what SQLite's pragmas do not expose
//! (collations, CHECK constraints, generated expressions, AUTOINCREMENT, deferrable foreign
//! keys, index expressions and partial-index conditions).
//!
//! Normalised text: comments and whitespace never count; keywords and unquoted identifiers are
//! lowercased; a quoted identifier that is a plain identifier (`"Host"`, `[host]`, `` `host` ``)
//! is unquoted and lowercased; other quoted identifiers are double-quoted; string literals stay
//! exactly as written; spacing is canonical (one space between tokens, none around `(`, `)`,
//! `,`, `.` and `;`, none after a unary sign).

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A keyword or an unquoted identifier.
    Word,
    /// A quoted identifier: `"x"`, `` `x` `` or `[x]`.
    Ident,
    /// A string literal `'..'`.
    Str,
    /// A blob literal `x'..'`.
    Blob,
    /// A numeric literal.
    Number,
    /// A parameter: `?`, `?1`, `:name`, `@name`, `$name`.
    Variable,
    /// `(`, `)`, `,`, `.` or `;`.
    Punct,
    /// Any other operator: `=`, `<>`, `||`, `->>`, `-`, ...
    Operator,
}

/// One token of SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// What it is.
    pub kind: Kind,
    /// Its text as written (quotes included).
    pub text: &'a str,
    /// Whether whitespace or a comment precedes it.
    pub gap: bool,
}

impl Token<'_> {
    /// Whether it is the keyword (or unquoted word) `kw`, ignoring case.
    pub fn is(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }

    /// The identifier it names: a word as written, a quoted identifier without its quotes; any
    /// other token as written.
    pub fn ident(&self) -> String {
        match self.kind {
            Kind::Ident => unquote(self.text),
            _ => self.text.to_string(),
        }
    }

    /// The token's canonical text.
    fn canonical(&self) -> String {
        match self.kind {
            Kind::Word | Kind::Number | Kind::Blob => self.text.to_ascii_lowercase(),
            Kind::Ident => {
                let inner = unquote(self.text);
                if is_plain_identifier(&inner) {
                    inner.to_ascii_lowercase()
                } else {
                    format!("\"{}\"", inner.replace('"', "\"\""))
                }
            }
            Kind::Str | Kind::Variable | Kind::Punct | Kind::Operator => self.text.to_string(),
        }
    }
}

/// `"a""b"` → `a"b`, `[x]` → `x`, `` `a``b` `` → ``a`b``; an unterminated one as far as it goes.
fn unquote(text: &str) -> String {
    let Some(open) = text.chars().next() else {
        return String::new();
    };
    let close = if open == '[' { ']' } else { open };
    let inner = &text[open.len_utf8()..];
    let inner = inner.strip_suffix(close).unwrap_or(inner);
    if open == '[' {
        inner.to_string()
    } else {
        let doubled: String = [close, close].iter().collect();
        inner.replace(&doubled, &close.to_string())
    }
}

fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The index just past the quoted text opening at `open` (a doubled quote is an escape); the
/// end of the input when it is unterminated.
fn quoted_end(b: &[u8], open: usize, quote: u8) -> usize {
    let mut j = open + 1;
    while j < b.len() {
        if b[j] == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

fn number_end(b: &[u8], mut i: usize) -> usize {
    let digits = |b: &[u8], mut i: usize| {
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
        i
    };
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    i = digits(b, i);
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = digits(b, j);
        }
    }
    i
}

/// The tokens of `sql` following SQLite's lexical rules; whitespace and comments (`-- ..` and
/// `/* .. */`) are dropped.
pub fn tokenize(sql: &str) -> Vec<Token<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut gap = false;
    while i < b.len() {
        let start = i;
        let c = b[i];
        let next = b.get(i + 1).copied();
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => {
                i += 1;
                gap = true;
                continue;
            }
            b'-' if next == Some(b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                gap = true;
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                gap = true;
                continue;
            }
            b'\'' => {
                i = quoted_end(b, i, b'\'');
                Kind::Str
            }
            b'"' | b'`' => {
                i = quoted_end(b, i, c);
                Kind::Ident
            }
            b'[' => {
                i = sql[i..].find(']').map_or(b.len(), |p| i + p + 1);
                Kind::Ident
            }
            b'x' | b'X' if next == Some(b'\'') => {
                i = quoted_end(b, i + 1, b'\'');
                Kind::Blob
            }
            b'0'..=b'9' => {
                i = number_end(b, i);
                Kind::Number
            }
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                i = number_end(b, i);
                Kind::Number
            }
            b'?' => {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                Kind::Variable
            }
            b':' | b'@' | b'$' if next.is_some_and(ident_char) => {
                i += 1;
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                Kind::Variable
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
                Kind::Word
            }
            b'(' | b')' | b',' | b'.' | b';' => {
                i += 1;
                Kind::Punct
            }
            _ => {
                let rest = &sql[i..];
                let len = ["->>", "||", "<=", ">=", "<>", "!=", "==", "<<", ">>", "->"]
                    .iter()
                    .find(|op| rest.starts_with(*op))
                    .map_or(1, |op| op.len());
                i += len;
                Kind::Operator
            }
        };
        out.push(Token {
            kind,
            text: &sql[start..i],
            gap,
        });
        gap = false;
    }
    out
}

/// The index of the `)` closing the `(` at `open`.
fn closing(tokens: &[Token<'_>], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `tokens` without parentheses around all of them: `((a + b))` → `a + b`, while `(1) + (2)`
/// stays as it is.
pub fn strip_outer_parens<'t, 'a>(mut tokens: &'t [Token<'a>]) -> &'t [Token<'a>] {
    while tokens.len() >= 2
        && tokens[0].is_punct("(")
        && closing(tokens, 0) == Some(tokens.len() - 1)
    {
        tokens = &tokens[1..tokens.len() - 1];
    }
    tokens
}

/// Renders tokens. `canonical`: each token normalised, with canonical spacing (one space
/// between tokens, none before `)`, `,`, `.`, `;` and before `(` unless an operator precedes
/// it, none after `(`, `,`, `.`, `;` and a unary sign). Otherwise each token as written, one space wherever the text had whitespace or
/// a comment.
fn render(tokens: &[Token<'_>], canonical: bool) -> String {
    let mut out = String::new();
    let mut prev: Option<&Token<'_>> = None;
    let mut prev_unary = false;
    for t in tokens {
        let text = if canonical {
            t.canonical()
        } else {
            t.text.to_string()
        };
        let unary = t.kind == Kind::Operator
            && matches!(t.text, "-" | "+" | "~")
            && prev.is_none_or(|p| {
                p.kind == Kind::Operator || (p.kind == Kind::Punct && p.text != ")")
            });
        if let Some(p) = prev {
            let space = if !canonical {
                t.gap
            } else if t.is_punct("(") {
                p.kind == Kind::Operator && !prev_unary
            } else if t.kind == Kind::Punct {
                false
            } else if p.kind == Kind::Punct {
                p.text == ")"
            } else {
                !prev_unary
            };
            // Never glue two tokens into another one (`- -1` is not a comment).
            let glue = out.ends_with('-') && text.starts_with('-')
                || out.ends_with('/') && text.starts_with('*');
            if space || glue {
                out.push(' ');
            }
        }
        out.push_str(&text);
        prev = Some(t);
        prev_unary = unary;
    }
    out
}

/// `sql` normalised (see the module's documentation).
pub fn normalize(sql: &str) -> String {
    render(&tokenize(sql), true)
}

/// An expression normalised, without parentheses around all of it:
/// `(strftime ('%s','now'))` and `strftime('%s', 'now')` are the same.
pub fn normalize_expr(sql: &str) -> String {
    render(strip_outer_parens(&tokenize(sql)), true)
}

/// An expression as written, tidied: comments dropped, spacing canonical, no parentheses around
/// all of it; case and quoting kept.
pub fn tidy_expr(sql: &str) -> String {
    render(strip_outer_parens(&tokenize(sql)), false)
}

/// A `CREATE VIEW` or `CREATE TRIGGER` statement normalised, without `TEMP` and `IF NOT EXISTS`
/// (which do not change what it creates) and without a trailing `;`.
pub fn normalize_create(sql: &str) -> String {
    let mut tokens = tokenize(sql);
    if tokens.len() > 2 && tokens[0].is("create") {
        if tokens[1].is("temp") || tokens[1].is("temporary") {
            tokens.remove(1);
        }
        if tokens.len() > 5 && tokens[2].is("if") && tokens[3].is("not") && tokens[4].is("exists") {
            tokens.drain(2..5);
        }
    }
    while tokens.last().is_some_and(|t| t.is_punct(";")) {
        tokens.pop();
    }
    render(&tokens, true)
}

/// What the text of a `CREATE TABLE` says beyond SQLite's pragmas. Expressions are tidied
/// ([`tidy_expr`]): compare them through [`normalize_expr`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedTable {
    /// The column definitions, in order.
    pub columns: Vec<ParsedColumn>,
    /// Table-level `CHECK` expressions, in order.
    pub checks: Vec<String>,
    /// Foreign keys (column-level and table-level), in declaration order.
    pub foreign_keys: Vec<ParsedForeignKey>,
    /// Whether the primary key says `AUTOINCREMENT`.
    pub autoincrement: bool,
}

/// A column definition's parts the pragmas do not expose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedColumn {
    /// The column's name, unquoted.
    pub name: String,
    /// `COLLATE name`, the name as written.
    pub collation: Option<String>,
    /// The expression of `[GENERATED ALWAYS] AS (expr)`.
    pub generated: Option<String>,
    /// The column's `CHECK` expressions.
    pub checks: Vec<String>,
}

/// A foreign key's parts the pragmas do not expose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedForeignKey {
    /// The referencing columns, unquoted.
    pub from: Vec<String>,
    /// The parent table, unquoted.
    pub table: String,
    /// Whether it is `DEFERRABLE INITIALLY DEFERRED`.
    pub deferred: bool,
}

/// What the text of a `CREATE INDEX` says beyond SQLite's pragmas.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedIndex {
    /// The indexed terms, in order.
    pub terms: Vec<ParsedTerm>,
    /// The condition of a partial index, tidied.
    pub where_clause: Option<String>,
}

/// One term of an index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedTerm {
    /// The column or the expression, tidied, without `COLLATE` and `ASC`/`DESC`.
    pub expr: String,
    /// `COLLATE name`, as written.
    pub collation: Option<String>,
    /// Whether it says `DESC`.
    pub desc: bool,
}

/// `tokens` split at commas outside parentheses.
fn split_top<'t, 'a>(tokens: &'t [Token<'a>]) -> Vec<&'t [Token<'a>]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, t) in tokens.iter().enumerate() {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && t.is_punct(",") {
            out.push(&tokens[start..i]);
            start = i + 1;
        }
    }
    if start < tokens.len() {
        out.push(&tokens[start..]);
    }
    out
}

fn tidy(tokens: &[Token<'_>]) -> String {
    render(strip_outer_parens(tokens), false)
}

/// Skips `CREATE [TEMP] <kind words> [IF NOT EXISTS] [schema.]name`, returning the index after
/// the name, or `None` when `tokens` is no such statement.
fn after_name(tokens: &[Token<'_>], kinds: &[&str]) -> Option<usize> {
    let mut i = 0;
    if !tokens.first()?.is("create") {
        return None;
    }
    i += 1;
    if tokens.get(i)?.is("temp") || tokens.get(i)?.is("temporary") {
        i += 1;
    }
    for kind in kinds {
        if tokens.get(i).is_some_and(|t| t.is(kind)) {
            i += 1;
        }
    }
    if !tokens.get(i - 1)?.is(kinds.last()?) {
        return None;
    }
    if tokens.get(i).is_some_and(|t| t.is("if")) {
        i += 3;
    }
    i += 1;
    if tokens.get(i).is_some_and(|t| t.is_punct(".")) {
        i += 2;
    }
    (i <= tokens.len()).then_some(i)
}

/// Whether `tokens[at..]` starts `DEFERRABLE INITIALLY DEFERRED` (not after `NOT`).
fn deferred_at(tokens: &[Token<'_>], at: usize) -> bool {
    tokens[at].is("deferrable")
        && !(at > 0 && tokens[at - 1].is("not"))
        && tokens.get(at + 1).is_some_and(|t| t.is("initially"))
        && tokens.get(at + 2).is_some_and(|t| t.is("deferred"))
}

/// `REFERENCES parent ...` at `tokens[at]`: the parent's name.
fn parent_at(tokens: &[Token<'_>], at: usize) -> String {
    tokens.get(at + 1).map(Token::ident).unwrap_or_default()
}

/// The identifiers inside the parenthesised list at `open`, and the index after its `)`.
fn ident_list(tokens: &[Token<'_>], open: usize) -> Option<(Vec<String>, usize)> {
    if !tokens.get(open)?.is_punct("(") {
        return None;
    }
    let close = closing(tokens, open)?;
    let names = split_top(&tokens[open + 1..close])
        .iter()
        .filter_map(|item| item.first().map(Token::ident))
        .collect();
    Some((names, close + 1))
}

/// The parts of a `CREATE TABLE` statement the pragmas do not expose; `None` for anything else
/// (a virtual table, unparseable text). `CREATE TABLE .. AS SELECT` has none.
pub fn parse_create_table(sql: &str) -> Option<ParsedTable> {
    let tokens = tokenize(sql);
    let i = after_name(&tokens, &["table"])?;
    let mut out = ParsedTable::default();
    if !tokens.get(i)?.is_punct("(") {
        return Some(out);
    }
    let close = closing(&tokens, i)?;
    for item in split_top(&tokens[i + 1..close]) {
        let mut j = 0;
        if item.first().is_some_and(|t| t.is("constraint")) {
            j = 2;
        }
        let Some(first) = item.get(j) else {
            continue;
        };
        let table_constraint = ["primary", "unique", "check", "foreign"]
            .iter()
            .any(|k| first.is(k));
        if table_constraint {
            if item.iter().any(|t| t.is("autoincrement")) {
                out.autoincrement = true;
            }
            if first.is("check") {
                if let Some(end) = closing(item, j + 1) {
                    out.checks.push(tidy(&item[j + 2..end]));
                }
            } else if first.is("foreign") {
                let Some((from, at)) = ident_list(item, j + 2) else {
                    continue;
                };
                let deferred = (at..item.len()).any(|k| deferred_at(item, k));
                out.foreign_keys.push(ParsedForeignKey {
                    from,
                    table: parent_at(item, at),
                    deferred,
                });
            }
            continue;
        }
        let mut column = ParsedColumn {
            name: first.ident(),
            ..ParsedColumn::default()
        };
        let mut k = j + 1;
        while k < item.len() {
            let t = &item[k];
            if t.is_punct("(") {
                k = closing(item, k)? + 1;
                continue;
            }
            if t.is("collate") {
                column.collation = item.get(k + 1).map(Token::ident);
                k += 2;
                continue;
            }
            if t.is("check") && item.get(k + 1).is_some_and(|n| n.is_punct("(")) {
                let end = closing(item, k + 1)?;
                column.checks.push(tidy(&item[k + 2..end]));
                k = end + 1;
                continue;
            }
            if t.is("default") && !(k > 0 && item[k - 1].is("set")) {
                // Its value is no constraint, whatever words it holds.
                k = match item.get(k + 1) {
                    Some(n) if n.is_punct("(") => closing(item, k + 1)? + 1,
                    Some(n) if n.kind == Kind::Operator => k + 3,
                    _ => k + 2,
                };
                continue;
            }
            if t.is("as") && item.get(k + 1).is_some_and(|n| n.is_punct("(")) {
                let end = closing(item, k + 1)?;
                column.generated = Some(tidy(&item[k + 2..end]));
                k = end + 1;
                continue;
            }
            if t.is("autoincrement") {
                out.autoincrement = true;
            } else if t.is("references") {
                out.foreign_keys.push(ParsedForeignKey {
                    from: vec![column.name.clone()],
                    table: parent_at(item, k),
                    deferred: false,
                });
            } else if deferred_at(item, k)
                && let Some(fk) = out.foreign_keys.last_mut()
            {
                fk.deferred = true;
            }
            k += 1;
        }
        out.columns.push(column);
    }
    Some(out)
}

/// The parts of a `CREATE INDEX` statement the pragmas do not expose; `None` for anything else.
pub fn parse_create_index(sql: &str) -> Option<ParsedIndex> {
    let tokens = tokenize(sql);
    let i = after_name(&tokens, &["unique", "index"])?;
    if !tokens.get(i)?.is("on") {
        return None;
    }
    let mut open = i + 2;
    if tokens.get(open).is_some_and(|t| t.is_punct(".")) {
        open += 2;
    }
    let close = closing(&tokens, open)?;
    let mut out = ParsedIndex::default();
    for term in split_top(&tokens[open + 1..close]) {
        let mut term = term;
        let mut parsed = ParsedTerm::default();
        if let Some(last) = term.last()
            && (last.is("asc") || last.is("desc"))
        {
            parsed.desc = last.is("desc");
            term = &term[..term.len() - 1];
        }
        if term.len() >= 3 && term[term.len() - 2].is("collate") {
            parsed.collation = Some(term[term.len() - 1].ident());
            term = &term[..term.len() - 2];
        }
        parsed.expr = tidy(term);
        out.terms.push(parsed);
    }
    let mut rest = &tokens[close + 1..];
    while rest.last().is_some_and(|t| t.is_punct(";")) {
        rest = &rest[..rest.len() - 1];
    }
    if rest.first().is_some_and(|t| t.is("where")) {
        out.where_clause = Some(tidy(&rest[1..]));
    }
    Some(out)
}

/// Where `t` starts in `sql`, which it was cut from.
fn offset(sql: &str, t: &Token<'_>) -> usize {
    t.text.as_ptr() as usize - sql.as_ptr() as usize
}

/// A `CREATE VIEW` statement's column names (`CREATE VIEW v(a, b) AS ..`, usually none) and
/// its `SELECT`, as written; `None` for anything else.
pub fn view_parts(sql: &str) -> Option<(Vec<String>, &str)> {
    let tokens = tokenize(sql);
    let i = after_name(&tokens, &["view"])?;
    let (columns, at) = ident_list(&tokens, i).unwrap_or((Vec::new(), i));
    let select = tokens.get(at + 1).filter(|_| tokens[at].is("as"))?;
    let text = sql[offset(sql, select)..].trim_end();
    Some((columns, text.trim_end_matches(';').trim_end()))
}

/// What follows `CREATE TRIGGER [IF NOT EXISTS] name` in a trigger's statement, as written
/// (`AFTER UPDATE ON t BEGIN .. END`); `None` for anything else.
pub fn trigger_body(sql: &str) -> Option<&str> {
    let tokens = tokenize(sql);
    let i = after_name(&tokens, &["trigger"])?;
    let text = sql[offset(sql, tokens.get(i)?)..].trim_end();
    Some(text.trim_end_matches(';').trim_end())
}

/// A default SQLite stores as a string though it is written as a name: `DEFAULT Draft` or
/// `DEFAULT "Draft"` (not in parentheses, and not `TRUE`, `FALSE` or `CURRENT_*`). Returns the
/// string's text.
pub fn bare_word_default(sql: &str) -> Option<String> {
    let tokens = tokenize(sql);
    let [t] = tokens.as_slice() else {
        return None;
    };
    match t.kind {
        Kind::Word => {
            let lower = t.text.to_ascii_lowercase();
            let literal = [
                "true",
                "false",
                "null",
                "current_time",
                "current_date",
                "current_timestamp",
            ];
            (!literal.contains(&lower.as_str())).then(|| t.text.to_string())
        }
        Kind::Ident if t.text.starts_with('"') => {
            Some(t.text[1..t.text.len() - 1].replace("\"\"", "\""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(Kind, &str)> {
        tokenize(sql).iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn tokens_follow_sqlite_rules() {
        use Kind::*;
        assert_eq!(
            kinds(
                "SELECT 'it''s', \"a\"\"b\", `c`, [d e], x'AB', 1.5e3, .5, 0x1F, ?1, :p -- c\n/* d */ a->>'$' || b <> c"
            ),
            [
                (Word, "SELECT"),
                (Str, "'it''s'"),
                (Punct, ","),
                (Ident, "\"a\"\"b\""),
                (Punct, ","),
                (Ident, "`c`"),
                (Punct, ","),
                (Ident, "[d e]"),
                (Punct, ","),
                (Blob, "x'AB'"),
                (Punct, ","),
                (Number, "1.5e3"),
                (Punct, ","),
                (Number, ".5"),
                (Punct, ","),
                (Number, "0x1F"),
                (Punct, ","),
                (Variable, "?1"),
                (Punct, ","),
                (Variable, ":p"),
                (Word, "a"),
                (Operator, "->>"),
                (Str, "'$'"),
                (Operator, "||"),
                (Word, "b"),
                (Operator, "<>"),
                (Word, "c"),
            ]
        );
        // Unterminated text runs to the end instead of failing.
        assert_eq!(kinds("'abc"), [(Str, "'abc")]);
        assert_eq!(kinds("a /* b"), [(Word, "a")]);
    }

    #[test]
    fn normal_form_ignores_spacing_case_comments_and_quoting() {
        let a = normalize(
            "CREATE TABLE \"Events\" ( Host  TEXT COLLATE NOCASE, -- the host\n at INT DEFAULT (strftime ('%s','now')) )",
        );
        let b = normalize(
            "create table [events](host text collate nocase,/* x */at int default(strftime('%s', 'now')))",
        );
        assert_eq!(a, b);
        assert_eq!(
            a,
            "create table events(host text collate nocase,at int default(strftime('%s','now')))"
        );
        // String literals and identifiers that need quotes keep what they hold.
        assert_ne!(normalize("SELECT 'A'"), normalize("SELECT 'a'"));
        assert_eq!(
            normalize("SELECT \"a b\", `x\"y`"),
            "select \"a b\",\"x\"\"y\""
        );
        // Operators are spaced, a unary sign is attached, and nothing becomes a comment.
        assert_eq!(normalize("a>=0 AND b= - 1"), "a >= 0 and b = -1");
        assert_eq!(normalize("a - -1"), "a - -1");
        assert_eq!(normalize("- -1"), "- -1");
        assert_eq!(normalize("count( * )"), "count(*)");
        assert_eq!(normalize("(a) AND (b)"), "(a) and(b)");
    }

    #[test]
    fn only_redundant_outer_parens_go() {
        assert_eq!(
            normalize_expr("(strftime('%s','now'))"),
            normalize_expr("strftime ('%s', 'now')")
        );
        assert_eq!(normalize_expr("((1 + 2))"), "1 + 2");
        assert_eq!(normalize_expr("(1) + (2)"), "(1) + (2)");
        assert_eq!(tidy_expr("(strftime('%s','now'))"), "strftime('%s','now')");
        assert_eq!(
            tidy_expr("( length(Host) /* c */ >\n 0 )"),
            "length(Host) > 0"
        );
        assert_eq!(tidy_expr("(')')"), "')'");
    }

    #[test]
    fn views_and_triggers_compare_without_if_not_exists() {
        assert_eq!(
            normalize_create("CREATE VIEW IF NOT EXISTS v AS SELECT 1;"),
            normalize_create("create view \"v\" as select 1")
        );
    }

    #[test]
    fn view_and_trigger_text_is_kept() {
        assert_eq!(
            view_parts("CREATE VIEW IF NOT EXISTS \"v\" AS\n  SELECT a -- x\n FROM t;"),
            Some((Vec::new(), "SELECT a -- x\n FROM t"))
        );
        assert_eq!(
            view_parts("CREATE VIEW v(x, [y]) AS SELECT 1, 2"),
            Some((vec!["x".to_string(), "y".to_string()], "SELECT 1, 2"))
        );
        assert_eq!(
            trigger_body(
                "CREATE TRIGGER IF NOT EXISTS main.t AFTER INSERT ON x BEGIN SELECT 1; END"
            ),
            Some("AFTER INSERT ON x BEGIN SELECT 1; END")
        );
        assert_eq!(trigger_body("CREATE TABLE t (a)"), None);
    }

    #[test]
    fn create_table_parts() {
        let t = parse_create_table(
            "CREATE TABLE IF NOT EXISTS main.\"t\" (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                host TEXT NOT NULL COLLATE \"NoCase\" CHECK (length(host) > 0) DEFAULT 'check',
                total REAL GENERATED ALWAYS AS ((price * qty)) STORED,
                v AS (price + 1),
                n VARCHAR(10) DEFAULT -1 CHECK(n >= -1),
                owner BLOB REFERENCES accounts(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                other BLOB REFERENCES accounts ON DELETE SET DEFAULT NOT DEFERRABLE INITIALLY DEFERRED,
                third BLOB DEFAULT (x'00') REFERENCES accounts ON UPDATE SET DEFAULT DEFERRABLE INITIALLY DEFERRED,
                CONSTRAINT two CHECK (n < 10),
                FOREIGN KEY (a, [b]) REFERENCES parents(x, y) DEFERRABLE INITIALLY DEFERRED,
                UNIQUE (host, n)
            ) STRICT",
        )
        .unwrap();
        assert!(t.autoincrement);
        assert_eq!(t.checks, ["n < 10"]);
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["id", "host", "total", "v", "n", "owner", "other", "third"]
        );
        assert_eq!(t.columns[1].collation.as_deref(), Some("NoCase"));
        assert_eq!(t.columns[1].checks, ["length(host) > 0"]);
        assert_eq!(t.columns[2].generated.as_deref(), Some("price * qty"));
        assert_eq!(t.columns[3].generated.as_deref(), Some("price + 1"));
        assert_eq!(t.columns[4].checks, ["n >= -1"]);
        let fks: Vec<_> = t
            .foreign_keys
            .iter()
            .map(|f| (f.from.join(","), f.table.as_str(), f.deferred))
            .collect();
        assert_eq!(
            fks,
            [
                ("owner".to_string(), "accounts", true),
                ("other".to_string(), "accounts", false),
                ("third".to_string(), "accounts", true),
                ("a,b".to_string(), "parents", true),
            ]
        );
        assert_eq!(
            parse_create_table("CREATE TABLE t AS SELECT 1"),
            Some(ParsedTable::default())
        );
        assert_eq!(
            parse_create_table("CREATE VIRTUAL TABLE t USING fts5(a)"),
            None
        );
    }

    #[test]
    fn create_index_parts() {
        let i = parse_create_index(
            "CREATE UNIQUE INDEX IF NOT EXISTS i ON t ((lower(host)) COLLATE nocase DESC, at ASC, n) WHERE deleted_at IS NULL;",
        )
        .unwrap();
        assert_eq!(
            i.terms,
            [
                ParsedTerm {
                    expr: "lower(host)".into(),
                    collation: Some("nocase".into()),
                    desc: true
                },
                ParsedTerm {
                    expr: "at".into(),
                    collation: None,
                    desc: false
                },
                ParsedTerm {
                    expr: "n".into(),
                    collation: None,
                    desc: false
                },
            ]
        );
        assert_eq!(i.where_clause.as_deref(), Some("deleted_at IS NULL"));
        assert_eq!(
            parse_create_index("CREATE INDEX i ON t(a)")
                .unwrap()
                .where_clause,
            None
        );
    }
}
