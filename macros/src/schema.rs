//! `schema! { table name { column: Type [options], .. } .. }`: parse → validate → expand.
//!
//! ```text
//! table notes {
//!     id: Uuid primary key,
//!     creator: Uuid references accounts(id) on delete cascade,
//!     title: Option<String> = "untitled",
//!     index notes_by_creator (creator),
//!     unique index notes_by_title (creator, title),
//!     primary key (a, b),              // composite keys
//! }
//! ```

use std::collections::HashSet;

use proc_macro2::{Delimiter, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Lit, Token, Type, braced, parenthesized};

use crate::canonical::canonical;

mod kw {
    syn::custom_keyword!(table);
    syn::custom_keyword!(index);
    syn::custom_keyword!(unique);
    syn::custom_keyword!(primary);
    syn::custom_keyword!(key);
    syn::custom_keyword!(references);
    syn::custom_keyword!(on);
    syn::custom_keyword!(delete);
    syn::custom_keyword!(cascade);
    syn::custom_keyword!(restrict);
    syn::custom_keyword!(set);
    syn::custom_keyword!(null);
    syn::custom_keyword!(no);
    syn::custom_keyword!(action);
}

struct SchemaInput {
    tables: Vec<TableInput>,
}

struct TableInput {
    attrs: Vec<Attribute>,
    name: Ident,
    columns: Vec<ColumnInput>,
    indexes: Vec<IndexInput>,
    primary_key: Option<(Span, Vec<Ident>)>,
}

struct ColumnInput {
    attrs: Vec<Attribute>,
    name: Ident,
    ty: Type,
    primary_key: bool,
    unique: bool,
    default: Option<(Span, String)>,
    references: Option<(Ident, Ident, &'static str)>,
    /// `as "VARCHAR(255)"`: the declared SQL type, instead of the Rust type's.
    sql_type: Option<String>,
}

struct IndexInput {
    /// The entry's doc comments (other attributes are not kept).
    docs: Vec<Attribute>,
    name: Ident,
    unique: bool,
    columns: Vec<Ident>,
}

impl Parse for SchemaInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut tables = Vec::new();
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            input.parse::<kw::table>().map_err(|e| {
                syn::Error::new(e.span(), "expected `table name { column: Type, .. }`")
            })?;
            let name = input.call(Ident::parse_any)?;
            let body;
            braced!(body in input);
            let mut table = TableInput {
                attrs,
                name,
                columns: Vec::new(),
                indexes: Vec::new(),
                primary_key: None,
            };
            while !body.is_empty() {
                parse_entry(&body, &mut table)?;
                if body.is_empty() {
                    break;
                }
                body.parse::<Token![,]>()?;
            }
            tables.push(table);
        }
        Ok(SchemaInput { tables })
    }
}

fn ident_list(input: ParseStream) -> syn::Result<Vec<Ident>> {
    let content;
    parenthesized!(content in input);
    Ok(
        Punctuated::<Ident, Token![,]>::parse_terminated_with(&content, Ident::parse_any)?
            .into_iter()
            .collect(),
    )
}

fn parse_entry(input: ParseStream, table: &mut TableInput) -> syn::Result<()> {
    let attrs = input.call(Attribute::parse_outer)?;
    let is_column = input.peek2(Token![:]);
    if !is_column && input.peek(kw::index) {
        input.parse::<kw::index>()?;
        let name = input.call(Ident::parse_any)?;
        let columns = ident_list(input)?;
        table.indexes.push(IndexInput {
            docs: docs(&attrs),
            name,
            unique: false,
            columns,
        });
        return Ok(());
    }
    if !is_column && input.peek(kw::unique) {
        input.parse::<kw::unique>()?;
        input.parse::<kw::index>()?;
        let name = input.call(Ident::parse_any)?;
        let columns = ident_list(input)?;
        table.indexes.push(IndexInput {
            docs: docs(&attrs),
            name,
            unique: true,
            columns,
        });
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
    let name = input.call(Ident::parse_any)?;
    input.parse::<Token![:]>()?;
    let ty: Type = input.parse()?;
    let mut column = ColumnInput {
        attrs,
        name,
        ty,
        primary_key: false,
        unique: false,
        default: None,
        references: None,
        sql_type: None,
    };
    while !input.is_empty() && !input.peek(Token![,]) {
        if input.peek(kw::primary) {
            input.parse::<kw::primary>()?;
            input.parse::<kw::key>()?;
            column.primary_key = true;
        } else if input.peek(kw::unique) {
            input.parse::<kw::unique>()?;
            column.unique = true;
        } else if input.peek(Token![as]) {
            input.parse::<Token![as]>()?;
            let lit: syn::LitStr = input.parse()?;
            column.sql_type = Some(lit.value());
        } else if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            column.default = Some(parse_default(input)?);
        } else if input.peek(kw::references) {
            input.parse::<kw::references>()?;
            let table = input.call(Ident::parse_any)?;
            let cols = ident_list(input)?;
            let [col] = <[Ident; 1]>::try_from(cols)
                .map_err(|_| input.error("`references table(column)` takes one column"))?;
            let mut on_delete = "NoAction";
            if input.peek(kw::on) {
                input.parse::<kw::on>()?;
                input.parse::<kw::delete>()?;
                on_delete = if input.parse::<Option<kw::cascade>>()?.is_some() {
                    "Cascade"
                } else if input.parse::<Option<kw::restrict>>()?.is_some() {
                    "Restrict"
                } else if input.parse::<Option<kw::set>>()?.is_some() {
                    input.parse::<kw::null>()?;
                    "SetNull"
                } else if input.parse::<Option<kw::no>>()?.is_some() {
                    input.parse::<kw::action>()?;
                    "NoAction"
                } else {
                    return Err(
                        input.error("expected `cascade`, `restrict`, `set null` or `no action`")
                    );
                };
            }
            column.references = Some((table, col, on_delete));
        } else {
            return Err(input.error(
                "expected `,` or a column option: `primary key`, `unique`, `= default`, \
                 `references table(column)`, `as \"SQL TYPE\"`",
            ));
        }
    }
    table.columns.push(column);
    Ok(())
}

/// The doc comments (`#[doc = ..]` attributes) among `attrs`.
fn docs(attrs: &[Attribute]) -> Vec<Attribute> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect()
}

/// A type as written, for docs: `Option<String>`, `&'static str`, `[u8; 16]`.
fn type_text(ty: &Type) -> String {
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

/// The generated doc of a column: its name, its table, its Rust type and its options.
fn column_doc(table: &str, c: &ColumnInput) -> String {
    let mut facts = vec![format!("`{}`", type_text(&c.ty))];
    if let Some(sql_type) = &c.sql_type {
        facts.push(format!("SQL type `{sql_type}`"));
    }
    if c.primary_key {
        facts.push("primary key".to_string());
    }
    if c.unique {
        facts.push("unique".to_string());
    }
    if let Some((_, sql)) = &c.default {
        facts.push(format!("default `{sql}`"));
    }
    if let Some((rt, rc, on_delete)) = &c.references {
        facts.push(format!("references `{}({})`", rt.unraw(), rc.unraw()));
        let action = match *on_delete {
            "Cascade" => "cascade",
            "Restrict" => "restrict",
            "SetNull" => "set null",
            _ => "",
        };
        if !action.is_empty() {
            facts.push(format!("on delete {action}"));
        }
    }
    format!(
        "Column `{}` of table `{table}` ({}).",
        c.name.unraw(),
        facts.join(", ")
    )
}

/// A literal default, as SQL text.
fn parse_default(input: ParseStream) -> syn::Result<(Span, String)> {
    // `null`: `DEFAULT NULL`, as written in many histories (for an `Option` column).
    if input.peek(syn::Ident) && !input.peek2(syn::token::Paren) {
        let fork = input.fork();
        let word: Ident = fork.parse()?;
        if word == "null" {
            input.parse::<Ident>()?;
            return Ok((word.span(), "NULL".to_string()));
        }
    }
    // `sql("CURRENT_TIMESTAMP")`: an SQL expression, used as written.
    if input.peek(syn::Ident) && input.peek2(syn::token::Paren) {
        let name: Ident = input.parse()?;
        if name != "sql" {
            return Err(syn::Error::new(
                name.span(),
                "expected a literal, `null` or `sql(\"expression\")`",
            ));
        }
        let content;
        parenthesized!(content in input);
        let lit: syn::LitStr = content.parse()?;
        let text = lit.value();
        let wrapped = if text.starts_with('(') {
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

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let schema_text = canonical(input.clone());
    let schema: SchemaInput = syn::parse2(input)?;
    validate(&schema)?;
    let modules = schema.tables.iter().map(expand_table);
    let table_mods = schema.tables.iter().map(|t| &t.name);
    Ok(quote! {
        #(#modules)*

        /// Every table of this role's database as this migration leaves it.
        #[allow(dead_code)]
        pub const SCHEMA: ::strata::Schema = ::strata::Schema::__new(
            &[#(<#table_mods::Table as ::strata::Table>::DEF),*],
            #schema_text,
        );
    })
}

fn validate(schema: &SchemaInput) -> syn::Result<()> {
    let mut errors: Option<syn::Error> = None;
    let mut err = |span: Span, msg: String| {
        let e = syn::Error::new(span, msg);
        match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        }
    };
    let mut tables = HashSet::new();
    let mut index_names = HashSet::new();
    for t in &schema.tables {
        let name = t.name.unraw().to_string();
        if !tables.insert(name.clone()) {
            err(t.name.span(), format!("table `{name}` is declared twice"));
        }
        if name.starts_with("sqlite_") || name.starts_with("strata_") {
            err(
                t.name.span(),
                format!("table names starting with `sqlite_` or `strata_` are reserved: `{name}`"),
            );
        }
        if t.columns.is_empty() {
            err(t.name.span(), format!("table `{name}` declares no column"));
        }
        let mut cols = HashSet::new();
        for c in &t.columns {
            let c_name = c.name.unraw().to_string();
            if let Some((span, d)) = &c.default
                && d == "NULL"
                && !type_text(&c.ty).starts_with("Option<")
            {
                err(
                    *span,
                    format!(
                        "`{c_name}` is NOT NULL (its type is not an `Option`), so it cannot \
                         default to NULL: make it `Option<..>`, or give another default"
                    ),
                );
            }
            if !cols.insert(c_name.clone()) {
                err(
                    c.name.span(),
                    format!("column `{c_name}` is declared twice in `{name}`"),
                );
            }
        }
        let column_pks = t.columns.iter().filter(|c| c.primary_key).count();
        if column_pks + usize::from(t.primary_key.is_some()) > 1 {
            err(
                t.name.span(),
                format!("table `{name}` declares more than one primary key"),
            );
        }
        let mut check_cols = |list: &[Ident], what: &str| {
            for c in list {
                if !cols.contains(&c.unraw().to_string()) {
                    err(
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
            check_cols(pk, "the primary key");
        }
        for i in &t.indexes {
            check_cols(&i.columns, &format!("index `{}`", i.name.unraw()));
        }
        for i in &t.indexes {
            let i_name = i.name.unraw().to_string();
            if !index_names.insert(i_name.clone()) {
                err(i.name.span(), format!("index `{i_name}` is declared twice"));
            }
            if cols.contains(&i_name) {
                err(
                    i.name.span(),
                    format!("index `{i_name}` has the name of a column of `{name}`"),
                );
            }
        }
    }
    for t in &schema.tables {
        for c in &t.columns {
            if let Some((rt, rc, _)) = &c.references {
                match schema.tables.iter().find(|x| x.name.unraw() == rt.unraw()) {
                    None => err(
                        rt.span(),
                        format!("table `{}` is not declared in this schema", rt.unraw()),
                    ),
                    Some(x) if !x.columns.iter().any(|xc| xc.name.unraw() == rc.unraw()) => err(
                        rc.span(),
                        format!("table `{}` has no column `{}`", rt.unraw(), rc.unraw()),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
    errors.map_or(Ok(()), Err)
}

/// `docs` after an empty line, to follow a generated first paragraph; nothing without docs.
fn with_paragraph_break(docs: Vec<Attribute>) -> Vec<TokenStream> {
    if docs.is_empty() {
        return Vec::new();
    }
    let mut out = vec![quote!(#[doc = ""])];
    out.extend(docs.iter().map(ToTokens::to_token_stream));
    out
}

fn const_name(ident: &Ident) -> Ident {
    format_ident!(
        "{}",
        ident.unraw().to_string().to_uppercase(),
        span = ident.span()
    )
}

fn expand_table(t: &TableInput) -> TokenStream {
    let module = &t.name;
    let name = t.name.unraw().to_string();
    let attrs = &t.attrs;
    // The user's doc comment where there is one, else a generated one.
    let module_doc = docs(attrs).is_empty().then(|| {
        format!(
            "Table `{name}` as this migration declares it: its `Table` marker, its `Row` and a \
             constant per column and per index."
        )
    });
    let module_doc = module_doc.iter();
    let field_attrs = t.columns.iter().map(|c| {
        let attrs = &c.attrs;
        let doc = docs(attrs)
            .is_empty()
            .then(|| column_doc(&name, c))
            .into_iter();
        quote!(#(#attrs)* #(#[doc = #doc])*)
    });
    let fields: Vec<&Ident> = t.columns.iter().map(|c| &c.name).collect();
    let types: Vec<&Type> = t.columns.iter().map(|c| &c.ty).collect();
    let column_defs = t.columns.iter().map(|c| {
        let col = c.name.unraw().to_string();
        let ty = &c.ty;
        let pk = c.primary_key;
        let unique = c.unique;
        let default = match &c.default {
            Some((_, sql)) => quote!(::core::option::Option::Some(#sql)),
            None => quote!(::core::option::Option::None),
        };
        let references = match &c.references {
            Some((rt, rc, on_delete)) => {
                let (rt, rc) = (rt.unraw().to_string(), rc.unraw().to_string());
                let on_delete = format_ident!("{}", on_delete);
                quote!(::core::option::Option::Some((#rt, #rc, ::strata::__private::OnDelete::#on_delete)))
            }
            None => quote!(::core::option::Option::None),
        };
        let sql_type = match &c.sql_type {
            Some(declared) => quote!(#declared),
            None => quote_spanned!(ty.span()=> <#ty as ::strata::SqlType>::SQL_TYPE),
        };
        let nullable = quote_spanned!(ty.span()=> <#ty as ::strata::SqlType>::NULLABLE);
        quote! {
            ::strata::__private::ColumnDef {
                name: #col,
                sql_type: #sql_type,
                nullable: #nullable,
                primary_key: #pk,
                unique: #unique,
                default: #default,
                references: #references,
            }
        }
    });
    let primary_key: Vec<String> = t
        .primary_key
        .as_ref()
        .map(|(_, cols)| cols.iter().map(|c| c.unraw().to_string()).collect())
        .unwrap_or_default();
    let index_defs = t.indexes.iter().map(|i| {
        let i_name = i.name.unraw().to_string();
        let cols = i.columns.iter().map(|c| c.unraw().to_string());
        let unique = i.unique;
        quote!(::strata::__private::IndexDef { name: #i_name, columns: &[#(#cols),*], unique: #unique })
    });
    let column_consts = t.columns.iter().enumerate().map(|(i, c)| {
        let konst = const_name(&c.name);
        let ty = &c.ty;
        let column_type = quote_spanned!(ty.span()=> ::strata::Column<Table, #ty>);
        let doc = column_doc(&name, c);
        let user_docs = with_paragraph_break(docs(&c.attrs));
        quote! {
            #[doc = #doc]
            #(#user_docs)*
            pub const #konst: #column_type = ::strata::Column::__new(#i);
        }
    });
    let index_consts = t.indexes.iter().enumerate().map(|(i, idx)| {
        let konst = const_name(&idx.name);
        let columns: Vec<String> = idx
            .columns
            .iter()
            .map(|c| format!("`{}`", c.unraw()))
            .collect();
        let doc = format!(
            "{} `{}` of table `{name}`, on {}.",
            if idx.unique { "Unique index" } else { "Index" },
            idx.name.unraw(),
            columns.join(", ")
        );
        let user_docs = with_paragraph_break(idx.docs.clone());
        quote! {
            #[doc = #doc]
            #(#user_docs)*
            pub const #konst: ::strata::Index<Table> = ::strata::Index::__new(#i);
        }
    });
    let getters = t.columns.iter().enumerate().map(|(i, c)| {
        let ty = &c.ty;
        quote_spanned!(ty.span()=> ::strata::__private::column_value::<#ty>(row, #i)?)
    });
    let values = t.columns.iter().map(|c| {
        let (ty, field) = (&c.ty, &c.name);
        quote_spanned!(ty.span()=> ::strata::__private::sql_param::<#ty>(&self.#field))
    });
    let row_doc = format!("A row of `{name}`, as this migration declares it.");
    let table_doc = format!("The `{name}` table, as this migration declares it.");
    quote! {
        #(#attrs)*
        #(#[doc = #module_doc])*
        #[allow(dead_code, unused_imports, clippy::all)]
        pub mod #module {
            use super::*;

            #[doc = #row_doc]
            #[derive(Debug, Clone, PartialEq)]
            pub struct Row {
                #( #field_attrs pub #fields: #types, )*
            }

            #[doc = #table_doc]
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct Table;

            impl ::strata::Table for Table {
                const DEF: &'static ::strata::__private::TableDef = &::strata::__private::TableDef {
                    name: #name,
                    columns: &[#(#column_defs),*],
                    primary_key: &[#(#primary_key),*],
                    indexes: &[#(#index_defs),*],
                };
            }

            impl ::strata::Record for Row {
                type Table = Table;
                fn values(&self) -> ::std::vec::Vec<&dyn ::strata::__private::rusqlite::types::ToSql> {
                    ::std::vec![#(#values),*]
                }
                fn from_row(
                    row: &::strata::__private::rusqlite::Row<'_>,
                ) -> ::strata::__private::rusqlite::Result<Self> {
                    ::core::result::Result::Ok(Row { #(#fields: #getters,)* })
                }
            }

            #(#column_consts)*
            #(#index_consts)*
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(ty: &str) -> String {
        type_text(&syn::parse_str::<Type>(ty).unwrap())
    }

    #[test]
    fn types_read_as_written() {
        assert_eq!(text("Option < String >"), "Option<String>");
        assert_eq!(
            text("chrono::DateTime<chrono::Utc>"),
            "chrono::DateTime<chrono::Utc>"
        );
        assert_eq!(text("&'static mut str"), "&'static mut str");
        assert_eq!(text("[u8; 16]"), "[u8; 16]");
        assert_eq!(text("(i64, String,)"), "(i64, String,)");
    }

    #[test]
    fn column_docs_name_type_and_options() {
        let schema: SchemaInput = syn::parse_str(
            "table notes { creator: Uuid references accounts(id) on delete cascade, \
             title: Option<String> as \"VARCHAR(100)\" unique = \"untitled\" }",
        )
        .unwrap();
        let t = &schema.tables[0];
        assert_eq!(
            column_doc("notes", &t.columns[0]),
            "Column `creator` of table `notes` (`Uuid`, references `accounts(id)`, on delete \
             cascade)."
        );
        assert_eq!(
            column_doc("notes", &t.columns[1]),
            "Column `title` of table `notes` (`Option<String>`, SQL type `VARCHAR(100)`, unique, \
             default `'untitled'`)."
        );
    }
}
