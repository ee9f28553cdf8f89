//! The `schema!` language: parse → validate → render as SQLite DDL.
//!
//! `strata-macros` uses it at compile time (to expand `schema!` and to have SQLite itself check
//! the declared DDL); tests use it to turn a printed declaration back into DDL without compiling
//! it. The language, in brief:
//!
//! ```text
//! extends super::m20240301090000_index_notes_by_creator;   // optional: inherit the rest
//! drop table legacy_memos;                                  // only with `extends`
//!
//! table events {
//!     id: i64 primary key autoincrement,
//!     host: String collate nocase check("length(host) > 0"),
//!     at: i64 = sql("strftime('%s', 'now')"),
//!     deleted_at: Option<i64> = null,
//!     total: Option<i64> generated("price * qty") stored,
//!     owner: Uuid references accounts(id) on delete cascade on update set null deferrable,
//!     primary key (a, b),
//!     unique (host, at),
//!     check("at >= 0"),
//!     foreign key (a, b) references parents(x, y) on delete set null,
//!     index events_by_host (host collate nocase desc, at),
//!     unique index live_host (expr("lower(host)")) where("deleted_at IS NULL"),
//! } strict, without rowid
//!
//! view live_events as "SELECT id, host FROM events WHERE deleted_at IS NULL";
//! trigger events_touch "AFTER UPDATE ON events BEGIN SELECT 1; END";
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::buffer::Cursor;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Ident, Lit, LitStr, Token, Type, braced, parenthesized};

mod kw {
    syn::custom_keyword!(table);
    syn::custom_keyword!(view);
    syn::custom_keyword!(trigger);
    syn::custom_keyword!(index);
    syn::custom_keyword!(unique);
    syn::custom_keyword!(primary);
    syn::custom_keyword!(foreign);
    syn::custom_keyword!(key);
    syn::custom_keyword!(references);
    syn::custom_keyword!(on);
    syn::custom_keyword!(delete);
    syn::custom_keyword!(update);
    syn::custom_keyword!(cascade);
    syn::custom_keyword!(restrict);
    syn::custom_keyword!(set);
    syn::custom_keyword!(null);
    syn::custom_keyword!(default);
    syn::custom_keyword!(no);
    syn::custom_keyword!(action);
    syn::custom_keyword!(deferrable);
    syn::custom_keyword!(autoincrement);
    syn::custom_keyword!(collate);
    syn::custom_keyword!(check);
    syn::custom_keyword!(generated);
    syn::custom_keyword!(stored);
    syn::custom_keyword!(strict);
    syn::custom_keyword!(without);
    syn::custom_keyword!(rowid);
    syn::custom_keyword!(extends);
    syn::custom_keyword!(expr);
    syn::custom_keyword!(asc);
    syn::custom_keyword!(desc);
    syn::custom_keyword!(base);
}

/// A whole `schema!` input.
pub struct Schema {
    /// `extends path;`: the declaration this one inherits from.
    pub extends: Option<syn::Path>,
    /// `drop table x;` (`view`, `trigger`): inherited objects left out.
    pub drops: Vec<(ObjectKind, Ident)>,
    /// Tables, views and triggers in declaration order.
    pub items: Vec<Item>,
}

/// The kinds of objects a schema declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `table`.
    Table,
    /// `view`.
    View,
    /// `trigger`.
    Trigger,
}

impl ObjectKind {
    /// The keyword.
    pub fn word(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::View => "view",
            ObjectKind::Trigger => "trigger",
        }
    }
}

/// One declared object, with the tokens it was written as (passed on to schemas that extend
/// this one).
pub struct Item {
    /// The object.
    pub object: Object,
    /// Its tokens, doc comments included.
    pub tokens: TokenStream,
}

/// A table, a view or a trigger.
pub enum Object {
    /// `table name { .. }`.
    Table(Table),
    /// `view name as "SELECT .."`.
    View(View),
    /// `trigger name "AFTER .. BEGIN .. END"`.
    Trigger(Trigger),
}

impl Object {
    /// Its kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Table(_) => ObjectKind::Table,
            Object::View(_) => ObjectKind::View,
            Object::Trigger(_) => ObjectKind::Trigger,
        }
    }

    /// Its name as written.
    pub fn ident(&self) -> &Ident {
        match self {
            Object::Table(t) => &t.name,
            Object::View(v) => &v.name,
            Object::Trigger(t) => &t.name,
        }
    }

    /// Its name in SQL.
    pub fn name(&self) -> String {
        self.ident().unraw().to_string()
    }
}

/// `table name { .. } [strict] [, without rowid]`.
pub struct Table {
    /// Outer attributes (doc comments).
    pub attrs: Vec<Attribute>,
    /// The table's name.
    pub name: Ident,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Indexes in order.
    pub indexes: Vec<Index>,
    /// `primary key (a, b)`.
    pub primary_key: Option<(Span, Vec<Ident>)>,
    /// `unique (a, b)` table constraints.
    pub uniques: Vec<Vec<Ident>>,
    /// `check("..")` table constraints.
    pub checks: Vec<LitStr>,
    /// `foreign key (..) references ..` table constraints.
    pub foreign_keys: Vec<ForeignKey>,
    /// `strict`.
    pub strict: bool,
    /// `without rowid`.
    pub without_rowid: bool,
    /// Whether an entry had a syntax error (the table is then not checked further).
    pub poisoned: bool,
}

/// A column.
pub struct Column {
    /// Outer attributes (doc comments and others, kept on the `Row` field).
    pub attrs: Vec<Attribute>,
    /// Its name.
    pub name: Ident,
    /// Its Rust type.
    pub ty: Type,
    /// `primary key`.
    pub primary_key: bool,
    /// `autoincrement`.
    pub autoincrement: bool,
    /// `unique`.
    pub unique: bool,
    /// `= default`, as SQL text, with the span of the value.
    pub default: Option<(Span, String)>,
    /// `references t(c) ..`.
    pub references: Option<ForeignKey>,
    /// `as "SQL TYPE"`.
    pub sql_type: Option<String>,
    /// `collate name`.
    pub collate: Option<Ident>,
    /// `check("..")`.
    pub check: Option<LitStr>,
    /// `generated("..") [stored]`: the expression and whether it is stored.
    pub generated: Option<(LitStr, bool)>,
}

/// What a foreign key does when its parent row changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `no action` (the default).
    NoAction,
    /// `restrict`.
    Restrict,
    /// `cascade`.
    Cascade,
    /// `set null`.
    SetNull,
    /// `set default`.
    SetDefault,
}

impl Action {
    /// The variant's name (`strata::OnDelete::…`).
    pub fn variant(self) -> &'static str {
        match self {
            Action::NoAction => "NoAction",
            Action::Restrict => "Restrict",
            Action::Cascade => "Cascade",
            Action::SetNull => "SetNull",
            Action::SetDefault => "SetDefault",
        }
    }

    /// The SQL words.
    pub fn sql(self) -> &'static str {
        match self {
            Action::NoAction => "NO ACTION",
            Action::Restrict => "RESTRICT",
            Action::Cascade => "CASCADE",
            Action::SetNull => "SET NULL",
            Action::SetDefault => "SET DEFAULT",
        }
    }
}

/// A foreign key: a column's `references t(c) ..`, or a table's `foreign key (..) references ..`.
pub struct ForeignKey {
    /// The referencing columns (the column itself for a column's key).
    pub columns: Vec<Ident>,
    /// The parent table.
    pub table: Ident,
    /// The parent's columns.
    pub parent_columns: Vec<Ident>,
    /// `on delete`.
    pub on_delete: Action,
    /// `on update`.
    pub on_update: Action,
    /// `deferrable` (`DEFERRABLE INITIALLY DEFERRED`).
    pub deferrable: bool,
}

/// An index.
pub struct Index {
    /// Its doc comments.
    pub docs: Vec<Attribute>,
    /// Its name.
    pub name: Ident,
    /// `unique index`.
    pub unique: bool,
    /// Its terms in order.
    pub terms: Vec<IndexTerm>,
    /// `where("..")`: a partial index.
    pub predicate: Option<LitStr>,
}

/// One term of an index.
pub struct IndexTerm {
    /// A column, or `expr("..")`.
    pub target: IndexTarget,
    /// `collate name`.
    pub collate: Option<Ident>,
    /// `asc` (false) or `desc` (true), when written.
    pub desc: Option<bool>,
}

/// What an index term indexes.
pub enum IndexTarget {
    /// A column.
    Column(Ident),
    /// An SQL expression.
    Expr(LitStr),
}

/// `view name as "SELECT .."`.
pub struct View {
    /// Outer attributes (doc comments).
    pub attrs: Vec<Attribute>,
    /// Its name.
    pub name: Ident,
    /// The `SELECT`.
    pub select: LitStr,
}

/// `trigger name "AFTER .. BEGIN .. END"`.
pub struct Trigger {
    /// Outer attributes (doc comments).
    pub attrs: Vec<Attribute>,
    /// Its name.
    pub name: Ident,
    /// Everything after `CREATE TRIGGER name`.
    pub body: LitStr,
}

/// Errors, gathered so that one compile shows them all.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
}

/// A parsed input: what parsed, and the syntax errors of the rest.
pub struct Parsed {
    /// `@base { .. }`: the extended declaration, passed back by its `__strata_schema!`.
    pub base: Option<Schema>,
    /// The declaration; a table with a syntax error is kept without the entry at fault and
    /// marked [`Table::poisoned`].
    pub schema: Schema,
    /// The syntax errors, combined, each at the tokens at fault.
    pub errors: Option<syn::Error>,
}

/// Parses a `schema!` input, going on after each syntax error so that one compile shows them
/// all.
///
/// # Errors
///
/// Only when the input cannot be read at all; syntax errors are in [`Parsed::errors`].
pub fn parse(tokens: TokenStream) -> syn::Result<Parsed> {
    let mut errors = Errors::default();
    let (base, schema) = (|input: ParseStream| parse_input(input, &mut errors)).parse2(tokens)?;
    Ok(Parsed {
        base,
        schema,
        errors: errors.0,
    })
}

/// [`parse`], with syntax errors as the error.
///
/// # Errors
///
/// Every syntax error, combined.
pub fn parse_strict(tokens: TokenStream) -> syn::Result<Parsed> {
    let parsed = parse(tokens)?;
    match parsed.errors {
        Some(e) => Err(e),
        None => Ok(parsed),
    }
}

/// `[@base { .. }] [extends path;] [drop kind name;]* items`.
fn parse_input(input: ParseStream, errors: &mut Errors) -> syn::Result<(Option<Schema>, Schema)> {
    let mut base = None;
    if input.peek(Token![@]) {
        input.parse::<Token![@]>()?;
        input.parse::<kw::base>()?;
        let content;
        braced!(content in input);
        base = Some(parse_schema(&content, errors)?);
    }
    Ok((base, parse_schema(input, errors)?))
}

fn tokens_between(start: Cursor<'_>, end: Cursor<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    let mut c = start;
    while c != end {
        match c.token_tree() {
            Some((tree, next)) => {
                out.extend([tree]);
                c = next;
            }
            None => break,
        }
    }
    out
}

/// Skips token trees until `stop` says so or the input ends.
fn skip_until(input: ParseStream, stop: impl Fn(ParseStream) -> bool) {
    while !input.is_empty() && !stop(input) {
        if input.parse::<TokenTree>().is_err() {
            break;
        }
    }
}

fn at_item_start(input: ParseStream) -> bool {
    input.peek(kw::table)
        || input.peek(kw::view)
        || input.peek(kw::trigger)
        || input.peek(Token![#])
}

fn parse_schema(input: ParseStream, errors: &mut Errors) -> syn::Result<Schema> {
    let mut schema = Schema {
        extends: None,
        drops: Vec::new(),
        items: Vec::new(),
    };
    if input.peek(kw::extends) {
        input.parse::<kw::extends>()?;
        schema.extends = Some(input.call(syn::Path::parse_mod_style)?);
        input.parse::<Token![;]>()?;
    }
    while input
        .fork()
        .call(Ident::parse_any)
        .is_ok_and(|i| i == "drop")
    {
        let word: Ident = input.call(Ident::parse_any)?;
        let kind = if input.parse::<Option<kw::table>>()?.is_some() {
            ObjectKind::Table
        } else if input.parse::<Option<kw::view>>()?.is_some() {
            ObjectKind::View
        } else if input.parse::<Option<kw::trigger>>()?.is_some() {
            ObjectKind::Trigger
        } else {
            return Err(input
                .error("expected `drop table name;`, `drop view name;` or `drop trigger name;`"));
        };
        let name = input.call(Ident::parse_any)?;
        input.parse::<Token![;]>()?;
        if schema.extends.is_none() {
            errors.at(
                word.span(),
                "`drop` leaves out an inherited object: it needs `extends path;` first",
            );
        }
        schema.drops.push((kind, name));
    }
    while !input.is_empty() {
        let start = input.cursor();
        match parse_item(input, errors) {
            Ok(object) => {
                let tokens = tokens_between(start, input.cursor());
                schema.items.push(Item { object, tokens });
            }
            Err(e) => {
                errors.push(e);
                // Resume at the next item (moving at least one token, so as not to stall).
                if input.cursor() == start && input.parse::<TokenTree>().is_err() {
                    break;
                }
                skip_until(input, at_item_start);
            }
        }
    }
    Ok(schema)
}

fn parse_item(input: ParseStream, errors: &mut Errors) -> syn::Result<Object> {
    let attrs = input.call(Attribute::parse_outer)?;
    if input.peek(kw::view) {
        input.parse::<kw::view>()?;
        let name = input.call(Ident::parse_any)?;
        input
            .parse::<Token![as]>()
            .map_err(|e| syn::Error::new(e.span(), "expected `view name as \"SELECT ..\";`"))?;
        let select: LitStr = input.parse()?;
        input.parse::<Token![;]>()?;
        return Ok(Object::View(View {
            attrs,
            name,
            select,
        }));
    }
    if input.peek(kw::trigger) {
        input.parse::<kw::trigger>()?;
        let name = input.call(Ident::parse_any)?;
        let body: LitStr = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `trigger name \"AFTER INSERT ON t BEGIN ..; END\";` (the SQL after \
                 `CREATE TRIGGER name`)",
            )
        })?;
        input.parse::<Token![;]>()?;
        return Ok(Object::Trigger(Trigger { attrs, name, body }));
    }
    input.parse::<kw::table>().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected `table name { column: Type, .. }`, `view name as \"..\";` or `trigger name \
             \"..\";`",
        )
    })?;
    let name = input.call(Ident::parse_any)?;
    let body;
    braced!(body in input);
    let mut table = Table {
        attrs,
        name,
        columns: Vec::new(),
        indexes: Vec::new(),
        primary_key: None,
        uniques: Vec::new(),
        checks: Vec::new(),
        foreign_keys: Vec::new(),
        strict: false,
        without_rowid: false,
        poisoned: false,
    };
    while !body.is_empty() {
        if let Err(e) = parse_entry(&body, &mut table) {
            errors.push(e);
            table.poisoned = true;
            skip_until(&body, |i| i.peek(Token![,]));
        }
        if body.is_empty() {
            break;
        }
        if let Err(e) = body.parse::<Token![,]>() {
            errors.push(e);
            table.poisoned = true;
            skip_until(&body, |i| i.peek(Token![,]));
            let _ = body.parse::<Option<Token![,]>>();
        }
    }
    // Table options: `strict`, `without rowid`, comma-separated.
    loop {
        if input.parse::<Option<kw::strict>>()?.is_some() {
            table.strict = true;
        } else if input.peek(kw::without) {
            input.parse::<kw::without>()?;
            input.parse::<kw::rowid>()?;
            table.without_rowid = true;
        } else {
            break;
        }
        if input.parse::<Option<Token![,]>>()?.is_none() {
            break;
        }
    }
    input.parse::<Option<Token![;]>>()?;
    Ok(Object::Table(table))
}

/// Runs `f` on a group's content; on an error, consumes the rest of the group first, so that
/// the error is reported and parsing goes on after the group (syn refuses a group left with
/// tokens in it, and would report only that).
fn within<T>(
    content: ParseStream,
    f: impl FnOnce(ParseStream) -> syn::Result<T>,
) -> syn::Result<T> {
    let result = f(content);
    if result.is_err() {
        let _ = content.parse::<TokenStream>();
    }
    result
}

fn ident_list(input: ParseStream) -> syn::Result<Vec<Ident>> {
    let content;
    parenthesized!(content in input);
    within(&content, |content| {
        Ok(
            Punctuated::<Ident, Token![,]>::parse_terminated_with(content, Ident::parse_any)?
                .into_iter()
                .collect(),
        )
    })
}

/// `("sql text")`.
fn paren_str(input: ParseStream) -> syn::Result<LitStr> {
    let content;
    parenthesized!(content in input);
    within(&content, |content| {
        let lit: LitStr = content.parse()?;
        if !content.is_empty() {
            return Err(content.error("expected one string literal"));
        }
        Ok(lit)
    })
}

fn parse_action(input: ParseStream) -> syn::Result<Action> {
    Ok(if input.parse::<Option<kw::cascade>>()?.is_some() {
        Action::Cascade
    } else if input.parse::<Option<kw::restrict>>()?.is_some() {
        Action::Restrict
    } else if input.parse::<Option<kw::set>>()?.is_some() {
        if input.parse::<Option<kw::null>>()?.is_some() {
            Action::SetNull
        } else {
            input.parse::<kw::default>()?;
            Action::SetDefault
        }
    } else if input.parse::<Option<kw::no>>()?.is_some() {
        input.parse::<kw::action>()?;
        Action::NoAction
    } else {
        return Err(
            input.error("expected `cascade`, `restrict`, `set null`, `set default` or `no action`")
        );
    })
}

/// `references table(cols) [on delete A] [on update A] [deferrable]`, after `references`.
fn parse_references(input: ParseStream, columns: Vec<Ident>) -> syn::Result<ForeignKey> {
    let table = input.call(Ident::parse_any)?;
    // `references t` without columns references t's primary key.
    let parent_columns = if input.peek(syn::token::Paren) {
        ident_list(input)?
    } else {
        Vec::new()
    };
    let mut fk = ForeignKey {
        columns,
        table,
        parent_columns,
        on_delete: Action::NoAction,
        on_update: Action::NoAction,
        deferrable: false,
    };
    loop {
        if input.peek(kw::on) {
            input.parse::<kw::on>()?;
            if input.parse::<Option<kw::delete>>()?.is_some() {
                fk.on_delete = parse_action(input)?;
            } else if input.parse::<Option<kw::update>>()?.is_some() {
                fk.on_update = parse_action(input)?;
            } else {
                return Err(input.error("expected `on delete ..` or `on update ..`"));
            }
        } else if input.parse::<Option<kw::deferrable>>()?.is_some() {
            fk.deferrable = true;
        } else {
            return Ok(fk);
        }
    }
}

/// A word written where a column option was expected, and what to write instead.
fn instead(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "not" | "notnull" => "columns are NOT NULL unless their type is an `Option<..>`",
        "nullable" => "a nullable column has an `Option<..>` type",
        "default" => "write the default as `= value`, `= null` or `= sql(\"expression\")`",
        "constraint" => {
            "constraint names are not kept by SQLite's schema: write the constraint without \
             `constraint name`"
        }
        "integer" | "text" | "real" | "blob" | "numeric" | "varchar" | "boolean" | "datetime" => {
            "the SQL type comes from the Rust type; another one is `as \"TYPE\"`"
        }
        "generated_always" | "always" => "write `generated(\"expression\") [stored]`",
        "asc" | "desc" => "ASC/DESC belong to index terms: `index name (col desc)`",
        _ => return None,
    })
}

/// The terms inside `index name (..)`.
fn parse_index_terms(content: ParseStream) -> syn::Result<Vec<IndexTerm>> {
    let mut terms = Vec::new();
    while !content.is_empty() {
        let target = if content.peek(kw::expr) && content.peek2(syn::token::Paren) {
            content.parse::<kw::expr>()?;
            IndexTarget::Expr(paren_str(content)?)
        } else if content.peek(LitStr) {
            return Err(content.error("an indexed expression is written `expr(\"lower(name)\")`"));
        } else if content.peek(Ident::peek_any) && content.peek2(syn::token::Paren) {
            return Err(content
                .error("an indexed expression is written as SQL text: `expr(\"lower(name)\")`"));
        } else {
            IndexTarget::Column(content.call(Ident::parse_any)?)
        };
        let mut term = IndexTerm {
            target,
            collate: None,
            desc: None,
        };
        loop {
            if content.parse::<Option<kw::collate>>()?.is_some() {
                term.collate = Some(content.call(Ident::parse_any)?);
            } else if content.parse::<Option<kw::desc>>()?.is_some() {
                term.desc = Some(true);
            } else if content.parse::<Option<kw::asc>>()?.is_some() {
                term.desc = Some(false);
            } else {
                break;
            }
        }
        terms.push(term);
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `,`, `collate name`, `asc` or `desc` after an index term",
            )
        })?;
    }
    Ok(terms)
}

fn parse_entry(input: ParseStream, table: &mut Table) -> syn::Result<()> {
    let attrs = input.call(Attribute::parse_outer)?;
    let is_column = input.peek2(Token![:]);
    if !is_column && (input.peek(kw::index) || (input.peek(kw::unique) && input.peek2(kw::index))) {
        let unique = input.parse::<Option<kw::unique>>()?.is_some();
        input.parse::<kw::index>()?;
        let name = input.call(Ident::parse_any)?;
        let content;
        parenthesized!(content in input);
        let terms = within(&content, parse_index_terms)?;
        let predicate = if input.peek(Token![where]) {
            input.parse::<Token![where]>()?;
            Some(paren_str(input)?)
        } else {
            None
        };
        table.indexes.push(Index {
            docs: docs(&attrs),
            name,
            unique,
            terms,
            predicate,
        });
        return Ok(());
    }
    if !is_column && input.peek(kw::unique) && input.peek2(syn::token::Paren) {
        input.parse::<kw::unique>()?;
        table.uniques.push(ident_list(input)?);
        return Ok(());
    }
    if !is_column && input.peek(kw::check) && input.peek2(syn::token::Paren) {
        input.parse::<kw::check>()?;
        table.checks.push(paren_str(input)?);
        return Ok(());
    }
    if !is_column && input.peek(kw::foreign) {
        input.parse::<kw::foreign>()?;
        input.parse::<kw::key>()?;
        let columns = ident_list(input)?;
        input.parse::<kw::references>()?;
        table.foreign_keys.push(parse_references(input, columns)?);
        return Ok(());
    }
    if !is_column && input.peek(kw::primary) {
        let span = input.parse::<kw::primary>()?.span;
        input.parse::<kw::key>()?;
        let columns = ident_list(input)?;
        if table.primary_key.is_some() {
            return Err(syn::Error::new(span, "the table already has a primary key"));
        }
        table.primary_key = Some((span, columns));
        return Ok(());
    }
    if !is_column {
        return Err(input.error(
            "expected a column `name: Type ..`, or `index`, `unique index`, `unique (..)`, \
             `primary key (..)`, `check(\"..\")` or `foreign key (..) references ..`",
        ));
    }
    let name = input.call(Ident::parse_any)?;
    input.parse::<Token![:]>()?;
    let ty: Type = input.parse()?;
    let mut column = Column {
        attrs,
        name,
        ty,
        primary_key: false,
        autoincrement: false,
        unique: false,
        default: None,
        references: None,
        sql_type: None,
        collate: None,
        check: None,
        generated: None,
    };
    while !input.is_empty() && !input.peek(Token![,]) {
        if input.peek(kw::primary) {
            input.parse::<kw::primary>()?;
            input.parse::<kw::key>()?;
            column.primary_key = true;
        } else if input.parse::<Option<kw::autoincrement>>()?.is_some() {
            column.autoincrement = true;
        } else if input.parse::<Option<kw::unique>>()?.is_some() {
            column.unique = true;
        } else if input.peek(Token![as]) {
            input.parse::<Token![as]>()?;
            let lit: LitStr = input.parse()?;
            column.sql_type = Some(lit.value());
        } else if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            column.default = Some(parse_default(input)?);
        } else if input.parse::<Option<kw::collate>>()?.is_some() {
            column.collate = Some(input.call(Ident::parse_any)?);
        } else if input.peek(kw::check) {
            input.parse::<kw::check>()?;
            column.check = Some(paren_str(input)?);
        } else if input.peek(kw::generated) {
            input.parse::<kw::generated>()?;
            let expr = paren_str(input)?;
            let stored = input.parse::<Option<kw::stored>>()?.is_some();
            column.generated = Some((expr, stored));
        } else if input.peek(kw::references) {
            input.parse::<kw::references>()?;
            column.references = Some(parse_references(input, vec![column.name.clone()])?);
        } else {
            let hint = input
                .fork()
                .call(Ident::parse_any)
                .ok()
                .and_then(|w| instead(&w.to_string()));
            let mut msg = String::from(
                "expected `,` or a column option: `primary key`, `autoincrement`, `unique`, \
                 `= default`, `references table(column)`, `collate name`, `check(\"..\")`, \
                 `generated(\"..\") [stored]`, `as \"SQL TYPE\"`",
            );
            if let Some(hint) = hint {
                msg = format!("{msg}; {hint}");
            }
            return Err(input.error(msg));
        }
    }
    table.columns.push(column);
    Ok(())
}

/// The doc comments (`#[doc = ..]` attributes) among `attrs`.
pub fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

/// A literal default, as SQL text.
fn parse_default(input: ParseStream) -> syn::Result<(Span, String)> {
    // `null`: `DEFAULT NULL`, as written in many histories (for an `Option` column).
    if input.peek(Ident) && !input.peek2(syn::token::Paren) {
        let fork = input.fork();
        let word: Ident = fork.parse()?;
        if word == "null" {
            input.parse::<Ident>()?;
            return Ok((word.span(), "NULL".to_string()));
        }
    }
    // `sql("CURRENT_TIMESTAMP")`: an SQL expression, used as written.
    if input.peek(Ident) && input.peek2(syn::token::Paren) {
        let name: Ident = input.parse()?;
        if name != "sql" {
            return Err(syn::Error::new(
                name.span(),
                "expected a literal, `null` or `sql(\"expression\")`",
            ));
        }
        let lit = paren_str(input)?;
        let text = lit.value();
        let wrapped = if text.starts_with('(') && wraps_all(&text) {
            text
        } else {
            format!("({text})")
        };
        return Ok((lit.span(), wrapped));
    }
    let negative = input.parse::<Option<Token![-]>>()?.is_some();
    let lit: Lit = input.parse()?;
    let sign = if negative { "-" } else { "" };
    let sql = match &lit {
        Lit::Int(i)
            if i.suffix().is_empty()
                || i.suffix().starts_with('i')
                || i.suffix().starts_with('u') =>
        {
            format!("{sign}{}", i.base10_digits())
        }
        Lit::Float(f) => format!("{sign}{}", f.base10_digits()),
        Lit::Bool(b) if !negative => if b.value { "1" } else { "0" }.to_string(),
        Lit::Str(s) if !negative => format!("'{}'", s.value().replace('\'', "''")),
        _ => {
            return Err(syn::Error::new(
                lit.span(),
                "a default is a number, `true`/`false`, a string, `null` or `sql(\"expression\")`",
            ));
        }
    };
    Ok((lit.span(), sql))
}

/// Whether the `(` at the start of `text` closes at its very end (outside quotes).
fn wraps_all(text: &str) -> bool {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '[' => quote = Some(']'),
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i == text.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

/// A type as written, for docs and checks: `Option<String>`, `&'static str`, `[u8; 16]`.
pub fn type_text(ty: &Type) -> String {
    fn write(tokens: TokenStream, out: &mut String) {
        let mut after_word = false;
        for tree in tokens {
            match tree {
                TokenTree::Ident(_) | TokenTree::Literal(_) => {
                    if after_word {
                        out.push(' ');
                    }
                    out.push_str(&tree.to_string());
                    after_word = true;
                }
                TokenTree::Punct(p) => {
                    out.push(p.as_char());
                    if matches!(p.as_char(), ',' | ';') {
                        out.push(' ');
                    }
                    after_word = false;
                }
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::None => ("", ""),
                    };
                    out.push_str(open);
                    write(g.stream(), out);
                    let trimmed = out.trim_end().len();
                    out.truncate(trimmed);
                    out.push_str(close);
                    after_word = g.delimiter() == Delimiter::None;
                }
            }
        }
    }
    let mut out = String::new();
    write(ty.to_token_stream(), &mut out);
    out.trim_end().to_string()
}

/// Whether the Rust type is an `Option<..>` (the column admits NULL).
pub fn is_option(ty: &Type) -> bool {
    let text = type_text(ty);
    text.starts_with("Option<")
        || text.starts_with("std::option::Option<")
        || text.starts_with("core::option::Option<")
        || text.starts_with("::std::option::Option<")
        || text.starts_with("::core::option::Option<")
}

/// The SQL type Strata gives a Rust type it knows (`SqlType::SQL_TYPE`), `None` for others
/// (their own `SqlType` impl decides, which only the compiler sees).
pub fn known_sql_type(ty: &Type) -> Option<&'static str> {
    let text = type_text(ty);
    let inner = match text.find("Option<") {
        Some(i) if is_option(ty) => text[i + 7..text.len() - 1].to_string(),
        _ => text,
    };
    let last = inner.rsplit("::").next().unwrap_or(&inner);
    Some(match last {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "bool" => "INTEGER",
        "f32" | "f64" => "REAL",
        "String" => "TEXT",
        "Vec<u8>" | "Uuid" => "BLOB",
        "Value" => "",
        _ if last.starts_with("DateTime<") => "TEXT",
        _ => return None,
    })
}

/// `name` as a double-quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_name(ident: &Ident) -> String {
    ident.unraw().to_string()
}

fn quoted_list(idents: &[Ident]) -> String {
    idents
        .iter()
        .map(|i| quote_ident(&sql_name(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Column {
    /// The declared SQL type: `as ".."`, else the Rust type's when Strata knows it, else `ANY`
    /// in a strict table and no type otherwise (good enough for SQLite to check the rest).
    pub fn sql_type_guess(&self, strict: bool) -> String {
        match (&self.sql_type, known_sql_type(&self.ty)) {
            (Some(declared), _) => declared.clone(),
            (None, Some(t)) if !(strict && t.is_empty()) => t.to_string(),
            (None, _) if strict => "ANY".to_string(),
            (None, _) => String::new(),
        }
    }

    /// The column's definition in `CREATE TABLE`, with `sql_type` as its type.
    pub fn sql(&self, sql_type: &str) -> String {
        let mut sql = quote_ident(&sql_name(&self.name));
        if !sql_type.is_empty() {
            let _ = write!(sql, " {sql_type}");
        }
        if !is_option(&self.ty) {
            sql.push_str(" NOT NULL");
        }
        if self.primary_key {
            sql.push_str(" PRIMARY KEY");
            if self.autoincrement {
                sql.push_str(" AUTOINCREMENT");
            }
        }
        if self.unique {
            sql.push_str(" UNIQUE");
        }
        if let Some((_, d)) = &self.default {
            let _ = write!(sql, " DEFAULT {d}");
        }
        if let Some(c) = &self.collate {
            let _ = write!(sql, " COLLATE {}", c.unraw());
        }
        if let Some((expr, stored)) = &self.generated {
            let kind = if *stored { "STORED" } else { "VIRTUAL" };
            let _ = write!(sql, " GENERATED ALWAYS AS ({}) {kind}", expr.value());
        }
        if let Some(check) = &self.check {
            let _ = write!(sql, " CHECK ({})", check.value());
        }
        if let Some(fk) = &self.references {
            let _ = write!(sql, " {}", fk.references_sql());
        }
        sql
    }
}

impl ForeignKey {
    /// `REFERENCES "t"("c") ON DELETE ..`: the part after the referencing columns.
    pub fn references_sql(&self) -> String {
        let mut sql = format!("REFERENCES {}", quote_ident(&sql_name(&self.table)));
        if !self.parent_columns.is_empty() {
            let _ = write!(sql, "({})", quoted_list(&self.parent_columns));
        }
        sql.push_str(&self.actions_sql());
        sql
    }

    /// ` ON DELETE .. ON UPDATE .. DEFERRABLE INITIALLY DEFERRED`, the parts that apply.
    pub fn actions_sql(&self) -> String {
        let mut sql = String::new();
        if self.on_delete != Action::NoAction {
            let _ = write!(sql, " ON DELETE {}", self.on_delete.sql());
        }
        if self.on_update != Action::NoAction {
            let _ = write!(sql, " ON UPDATE {}", self.on_update.sql());
        }
        if self.deferrable {
            sql.push_str(" DEFERRABLE INITIALLY DEFERRED");
        }
        sql
    }
}

impl Table {
    /// `CREATE TABLE` with each column's type from `sql_type`.
    pub fn create_sql(&self, sql_type: impl Fn(&Column) -> String) -> String {
        let mut parts: Vec<String> = self.columns.iter().map(|c| c.sql(&sql_type(c))).collect();
        if let Some((_, pk)) = &self.primary_key {
            parts.push(format!("PRIMARY KEY ({})", quoted_list(pk)));
        }
        for u in &self.uniques {
            parts.push(format!("UNIQUE ({})", quoted_list(u)));
        }
        for c in &self.checks {
            parts.push(format!("CHECK ({})", c.value()));
        }
        for fk in &self.foreign_keys {
            parts.push(format!(
                "FOREIGN KEY ({}) {}",
                quoted_list(&fk.columns),
                fk.references_sql()
            ));
        }
        let mut sql = format!(
            "CREATE TABLE {} ({})",
            quote_ident(&sql_name(&self.name)),
            parts.join(", ")
        );
        let mut options = Vec::new();
        if self.strict {
            options.push("STRICT");
        }
        if self.without_rowid {
            options.push("WITHOUT ROWID");
        }
        if !options.is_empty() {
            let _ = write!(sql, " {}", options.join(", "));
        }
        sql
    }
}

impl IndexTerm {
    /// The term in `CREATE INDEX`.
    pub fn sql(&self) -> String {
        let mut sql = match &self.target {
            IndexTarget::Column(c) => quote_ident(&sql_name(c)),
            IndexTarget::Expr(e) => e.value(),
        };
        if let Some(c) = &self.collate {
            let _ = write!(sql, " COLLATE {}", c.unraw());
        }
        match self.desc {
            Some(true) => sql.push_str(" DESC"),
            Some(false) => sql.push_str(" ASC"),
            None => {}
        }
        sql
    }
}

impl Index {
    /// `CREATE [UNIQUE] INDEX` on `table`.
    pub fn create_sql(&self, table: &str) -> String {
        let terms: Vec<String> = self.terms.iter().map(IndexTerm::sql).collect();
        let mut sql = format!(
            "CREATE {}INDEX {} ON {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(&sql_name(&self.name)),
            quote_ident(table),
            terms.join(", ")
        );
        if let Some(p) = &self.predicate {
            let _ = write!(sql, " WHERE {}", p.value());
        }
        sql
    }
}

impl View {
    /// `CREATE VIEW`.
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE VIEW {} AS {}",
            quote_ident(&sql_name(&self.name)),
            self.select.value()
        )
    }
}

impl Trigger {
    /// `CREATE TRIGGER`.
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE TRIGGER {} {}",
            quote_ident(&sql_name(&self.name)),
            self.body.value()
        )
    }
}

impl Object {
    /// The DDL creating the object (a table with its indexes), types as
    /// [`Column::sql_type_guess`] has them.
    pub fn ddl(&self) -> Vec<String> {
        match self {
            Object::Table(t) => {
                let mut out = vec![t.create_sql(|c| c.sql_type_guess(t.strict))];
                let name = sql_name(&t.name);
                out.extend(t.indexes.iter().map(|i| i.create_sql(&name)));
                out
            }
            Object::View(v) => vec![v.create_sql()],
            Object::Trigger(t) => vec![t.create_sql()],
        }
    }
}

impl Schema {
    /// The tables, in declaration order.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.items.iter().filter_map(|i| match &i.object {
            Object::Table(t) => Some(t),
            _ => None,
        })
    }

    /// Every statement creating the schema: tables (with their indexes) in declaration order,
    /// then views, then triggers — the order the runtime creates them in.
    pub fn ddl(&self) -> Vec<String> {
        let mut items: Vec<&Item> = self.items.iter().collect();
        items.sort_by_key(|i| i.object.kind() as u8);
        items.iter().flat_map(|i| i.object.ddl()).collect()
    }

    /// This schema with `base`'s objects it does not declare or drop: each redeclared object
    /// takes its inherited one's place, new ones follow.
    pub fn merged_with(self, base: Schema) -> Schema {
        let mut own: Vec<Option<Item>> = self.items.into_iter().map(Some).collect();
        let mut items = Vec::new();
        for inherited in base.items {
            let (kind, name) = (inherited.object.kind(), inherited.object.name());
            if self
                .drops
                .iter()
                .any(|(k, n)| *k == kind && n.unraw() == name)
            {
                continue;
            }
            let mine = own.iter_mut().find(|o| {
                o.as_ref()
                    .is_some_and(|o| o.object.kind() == kind && o.object.name() == name)
            });
            match mine {
                Some(slot) => items.extend(slot.take()),
                None => items.push(inherited),
            }
        }
        items.extend(own.into_iter().flatten());
        Schema {
            extends: None,
            drops: Vec::new(),
            items,
        }
    }

    /// The tokens of every object, for a schema extending this one.
    pub fn item_tokens(&self) -> TokenStream {
        self.items.iter().map(|i| i.tokens.clone()).collect()
    }
}

/// Checks what the parser cannot: names, references, combinations. Every error at once.
///
/// # Errors
///
/// The problems found, combined.
pub fn validate(schema: &Schema) -> syn::Result<()> {
    let mut errors = Errors::default();
    let mut names: HashSet<String> = HashSet::new();
    for item in &schema.items {
        let name = item.object.name();
        let span = item.object.ident().span();
        if !names.insert(name.to_ascii_lowercase()) {
            errors.at(span, format!("`{name}` is declared twice (tables, indexes, views and triggers share one namespace)"));
        }
        if name.starts_with("sqlite_") || name.starts_with("strata_") {
            errors.at(
                span,
                format!("names starting with `sqlite_` or `strata_` are reserved: `{name}`"),
            );
        }
    }
    for t in schema.tables().filter(|t| !t.poisoned) {
        validate_table(t, schema, &mut names, &mut errors);
    }
    errors.0.map_or(Ok(()), Err)
}

fn validate_table(t: &Table, schema: &Schema, names: &mut HashSet<String>, errors: &mut Errors) {
    let name = sql_name(&t.name);
    if t.columns.is_empty() {
        errors.at(t.name.span(), format!("table `{name}` declares no column"));
    }
    let mut cols = HashSet::new();
    for c in &t.columns {
        let c_name = sql_name(&c.name);
        if !cols.insert(c_name.to_ascii_lowercase()) {
            errors.at(
                c.name.span(),
                format!("column `{c_name}` is declared twice in `{name}`"),
            );
        }
        if let Some((span, d)) = &c.default {
            if d == "NULL" && !is_option(&c.ty) {
                errors.at(
                    *span,
                    format!(
                        "`{c_name}` is NOT NULL (its type is not an `Option`), so it cannot \
                         default to NULL: make it `Option<..>`, or give another default"
                    ),
                );
            }
            if c.generated.is_some() {
                errors.at(
                    *span,
                    format!("`{c_name}` is generated, so it cannot have a default"),
                );
            }
        }
        if c.autoincrement {
            let integer = c.sql_type.as_deref().map_or_else(
                || known_sql_type(&c.ty) == Some("INTEGER"),
                |t| t.eq_ignore_ascii_case("INTEGER"),
            );
            if !c.primary_key || !integer || t.without_rowid {
                errors.at(
                    c.name.span(),
                    format!(
                        "`{c_name}`: `autoincrement` needs an integer `primary key` column \
                         (`{c_name}: i64 primary key autoincrement`) in a table with a rowid"
                    ),
                );
            }
        }
        if c.generated.is_some() && c.primary_key {
            errors.at(
                c.name.span(),
                format!("`{c_name}` is generated, so it cannot be the primary key"),
            );
        }
    }
    let has = |c: &Ident| cols.contains(&sql_name(c).to_ascii_lowercase());
    let column_pks = t.columns.iter().filter(|c| c.primary_key).count();
    if column_pks + usize::from(t.primary_key.is_some()) > 1 {
        errors.at(
            t.name.span(),
            format!("table `{name}` declares more than one primary key"),
        );
    }
    if t.without_rowid && column_pks == 0 && t.primary_key.is_none() {
        errors.at(
            t.name.span(),
            format!("table `{name}` is `without rowid`, so it needs a primary key"),
        );
    }
    let check_cols = |list: &[Ident], what: &str, errors: &mut Errors| {
        for c in list {
            if !has(c) {
                errors.at(
                    c.span(),
                    format!(
                        "{what} names column `{}`, which `{name}` does not declare",
                        c.unraw()
                    ),
                );
            }
        }
    };
    if let Some((_, pk)) = &t.primary_key {
        check_cols(pk, "the primary key", errors);
    }
    for u in &t.uniques {
        check_cols(u, "a unique constraint", errors);
    }
    for fk in &t.foreign_keys {
        check_cols(&fk.columns, "a foreign key", errors);
    }
    for i in &t.indexes {
        let i_name = sql_name(&i.name);
        let columns: Vec<Ident> = i
            .terms
            .iter()
            .filter_map(|term| match &term.target {
                IndexTarget::Column(c) => Some(c.clone()),
                IndexTarget::Expr(_) => None,
            })
            .collect();
        check_cols(&columns, &format!("index `{i_name}`"), errors);
        if i.terms.is_empty() {
            errors.at(i.name.span(), format!("index `{i_name}` has no term"));
        }
        if !names.insert(i_name.to_ascii_lowercase()) {
            errors.at(
                i.name.span(),
                format!("index `{i_name}` is declared twice, or has the name of another object"),
            );
        }
        if cols.contains(&i_name.to_ascii_lowercase()) {
            errors.at(
                i.name.span(),
                format!("index `{i_name}` has the name of a column of `{name}`"),
            );
        }
    }
    let fks = t
        .columns
        .iter()
        .filter_map(|c| c.references.as_ref())
        .chain(&t.foreign_keys);
    for fk in fks {
        if !fk.parent_columns.is_empty() && fk.columns.len() != fk.parent_columns.len() {
            errors.at(
                fk.table.span(),
                format!(
                    "the foreign key has {} column(s) but references {}",
                    fk.columns.len(),
                    fk.parent_columns.len()
                ),
            );
        }
        let parent = schema.tables().find(|x| x.name.unraw() == fk.table.unraw());
        match parent {
            Some(p) if p.poisoned => {}
            None => errors.at(
                fk.table.span(),
                format!(
                    "table `{}` is not declared in this schema",
                    fk.table.unraw()
                ),
            ),
            Some(p) => {
                for pc in &fk.parent_columns {
                    if !p.columns.iter().any(|x| x.name.unraw() == pc.unraw()) {
                        errors.at(
                            pc.span(),
                            format!(
                                "table `{}` has no column `{}`",
                                fk.table.unraw(),
                                pc.unraw()
                            ),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> syn::Result<Schema> {
        let tokens: TokenStream = text.parse().unwrap();
        parse_strict(tokens).map(|p| p.schema)
    }

    #[test]
    fn every_form_renders_as_ddl() {
        let schema = parse_str(
            r#"
            table parents { x: i64, y: i64, primary key (x, y) } without rowid
            table events {
                id: i64 primary key autoincrement,
                host: String collate nocase check("length(host) > 0"),
                at: i64 = sql("strftime('%s', 'now')"),
                deleted_at: Option<i64> = null,
                price: i64, qty: i64,
                total: Option<i64> generated("price * qty") stored,
                a: Option<i64>, b: Option<i64>,
                unique (host, at),
                check("at >= 0"),
                foreign key (a, b) references parents(x, y) on delete set null on update cascade deferrable,
                index events_by_host (host collate nocase desc, at),
                unique index live_host (expr("lower(host)")) where("deleted_at IS NULL"),
            } strict
            view live as "SELECT id FROM events";
            trigger touch "AFTER UPDATE ON events BEGIN SELECT 1; END";
            "#,
        )
        .unwrap();
        validate(&schema).unwrap();
        let ddl = schema.ddl();
        assert_eq!(
            ddl[0],
            r#"CREATE TABLE "parents" ("x" INTEGER NOT NULL, "y" INTEGER NOT NULL, PRIMARY KEY ("x", "y")) WITHOUT ROWID"#
        );
        assert!(
            ddl[1].contains(r#""id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"#),
            "{}",
            ddl[1]
        );
        assert!(ddl[1].contains(r#""host" TEXT NOT NULL COLLATE nocase CHECK (length(host) > 0)"#));
        assert!(ddl[1].contains(r#"DEFAULT (strftime('%s', 'now'))"#));
        assert!(ddl[1].contains(r#""deleted_at" INTEGER DEFAULT NULL"#));
        assert!(ddl[1].contains(r#"GENERATED ALWAYS AS (price * qty) STORED"#));
        assert!(ddl[1].contains(r#"FOREIGN KEY ("a", "b") REFERENCES "parents"("x", "y") ON DELETE SET NULL ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED"#));
        assert!(ddl[1].ends_with(") STRICT"));
        assert_eq!(
            ddl[2],
            r#"CREATE INDEX "events_by_host" ON "events" ("host" COLLATE nocase DESC, "at")"#
        );
        assert_eq!(
            ddl[3],
            r#"CREATE UNIQUE INDEX "live_host" ON "events" (lower(host)) WHERE deleted_at IS NULL"#
        );
        assert_eq!(ddl[4], r#"CREATE VIEW "live" AS SELECT id FROM events"#);
        assert_eq!(
            ddl[5],
            r#"CREATE TRIGGER "touch" AFTER UPDATE ON events BEGIN SELECT 1; END"#
        );
    }

    #[test]
    fn every_syntax_error_is_reported_at_once() {
        let Err(e) = parse_str(
            "table a { x: i64 not null, y: i64 }
             table b { z: i64 default 3, w: String }
             table c { ok: i64 }",
        ) else {
            panic!("accepted")
        };
        let messages: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("NOT NULL unless"), "{}", messages[0]);
        assert!(messages[1].contains("`= value`"), "{}", messages[1]);
    }

    #[test]
    fn errors_inside_parentheses_are_reported_with_the_rest() {
        let Err(e) = parse_str(
            "table t { id: i64, host: String, index i (lower(host)), x: i64 check(\"a\" \"b\") }
             view v \"SELECT 1\";
             table u { y: i64 not null }",
        ) else {
            panic!("accepted")
        };
        let messages: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages[0].contains("expr(\"lower(name)\")"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].contains("one string literal"),
            "{}",
            messages[1]
        );
        assert!(messages[2].contains("view name as"), "{}", messages[2]);
        assert!(messages[3].contains("NOT NULL unless"), "{}", messages[3]);
    }

    #[test]
    fn validation_names_each_problem() {
        let schema = parse_str(
            "table t { id: String primary key autoincrement, d: i64 = null, g: i64 generated(\"1\") = 2,
               index i (missing), foreign key (d) references nowhere(x) }",
        )
        .unwrap();
        let messages: Vec<String> = validate(&schema)
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        let all = messages.join("\n");
        for expected in [
            "autoincrement` needs an integer",
            "cannot default to NULL",
            "is generated, so it cannot have a default",
            "does not declare",
            "`nowhere` is not declared",
        ] {
            assert!(all.contains(expected), "{expected} not in\n{all}");
        }
    }

    #[test]
    fn extends_merges_in_place() {
        let base = parse_str(
            "table a { x: i64 } table b { y: i64 } table c { z: i64 } view v as \"SELECT 1\";",
        )
        .unwrap();
        let own = parse_str(
            "extends super::m1; drop table c; table b { y: i64, w: i64 } table d { q: i64 }",
        )
        .unwrap();
        let merged = own.merged_with(base);
        let names: Vec<String> = merged.items.iter().map(|i| i.object.name()).collect();
        assert_eq!(names, ["a", "b", "v", "d"]);
        assert!(merged.ddl()[1].contains("\"w\""));
    }
}
