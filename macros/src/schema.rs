//! `schema! { table name { column: Type [options], .. } .. }`: parse → validate → check with
//! SQLite → expand. The language itself (parsing, validation, DDL) is the `strata-syntax`
//! crate; this module adds SQLite's own check of the declared DDL, `extends`, and the code.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use rusqlite::Connection;
use strata_syntax::{
    Column as ColumnInput, ForeignKey, IndexTarget, Object, Schema, Table as TableInput, docs,
    type_text,
};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, Type};

use crate::canonical::canonical;

/// The generated doc of a column: its name, its table, its Rust type and its options.
fn column_doc(table: &str, c: &ColumnInput) -> String {
    let mut facts = vec![format!("`{}`", type_text(&c.ty))];
    if let Some(sql_type) = &c.sql_type {
        facts.push(format!("SQL type `{sql_type}`"));
    }
    if c.primary_key {
        facts.push("primary key".to_string());
    }
    if c.autoincrement {
        facts.push("autoincrement".to_string());
    }
    if c.unique {
        facts.push("unique".to_string());
    }
    if let Some((_, sql)) = &c.default {
        facts.push(format!("default `{sql}`"));
    }
    if let Some(collate) = &c.collate {
        facts.push(format!("collate `{}`", collate.unraw()));
    }
    if let Some((expr, stored)) = &c.generated {
        let kind = if *stored { "stored" } else { "virtual" };
        facts.push(format!("generated `{}` ({kind})", expr.value()));
    }
    if let Some(check) = &c.check {
        facts.push(format!("check `{}`", check.value()));
    }
    if let Some(fk) = &c.references {
        let parents: Vec<String> = fk
            .parent_columns
            .iter()
            .map(|p| p.unraw().to_string())
            .collect();
        facts.push(format!(
            "references `{}({})`",
            fk.table.unraw(),
            parents.join(", ")
        ));
        for (when, action) in [("delete", fk.on_delete), ("update", fk.on_update)] {
            if action != strata_syntax::Action::NoAction {
                facts.push(format!("on {when} {}", action.sql().to_lowercase()));
            }
        }
        if fk.deferrable {
            facts.push("deferrable".to_string());
        }
    }
    format!(
        "Column `{}` of table `{table}` ({}).",
        c.name.unraw(),
        facts.join(", ")
    )
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let strata_syntax::Parsed {
        base,
        schema: own,
        errors: syntax_errors,
    } = strata_syntax::parse(input.clone())?;
    if let (Some(path), None) = (&own.extends, &base) {
        // Without its base, checking the rest would report every inherited table as missing.
        if let Some(e) = syntax_errors {
            return Err(e);
        }
        // Ask the extended declaration for its tokens; it calls `schema!` back with them.
        return Ok(quote_spanned! {path.span()=> #path::__strata_schema! { #input } });
    }
    let schema_text;
    let schema = match base {
        Some(base) => {
            let mut errors: Option<syn::Error> = None;
            for (kind, name) in &own.drops {
                let known = base
                    .items
                    .iter()
                    .any(|i| i.object.kind() == *kind && name.unraw() == i.object.name());
                if !known {
                    let e = syn::Error::new(
                        name.span(),
                        format!(
                            "`drop {} {}`: the extended declaration has no such {}",
                            kind.word(),
                            name.unraw(),
                            kind.word()
                        ),
                    );
                    match &mut errors {
                        Some(all) => all.combine(e),
                        None => errors = Some(e),
                    }
                }
            }
            if let Some(e) = errors {
                return Err(e);
            }
            let merged = own.merged_with(base);
            schema_text = canonical(merged.item_tokens());
            merged
        }
        None => {
            schema_text = canonical(input);
            own
        }
    };
    // Every error at once: syntax, then the checks of what parsed, then SQLite's own (only
    // when everything parsed, so that it is not misled by a missing entry).
    let mut errors = syntax_errors;
    let checked = strata_syntax::validate(&schema).and_then(|()| match errors {
        None => check_with_sqlite(&schema),
        Some(_) => Ok(()),
    });
    if let Err(e) = checked {
        match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        }
    }
    if let Some(e) = errors {
        return Err(e);
    }
    let modules = schema.tables().map(expand_table);
    let table_mods = schema.tables().map(|t| &t.name);
    let views = schema.items.iter().filter_map(|i| match &i.object {
        Object::View(v) => {
            let name = v.name.unraw().to_string();
            let select = v.select.value();
            Some(quote!(::strata::__private::ViewDef { name: #name, select: #select }))
        }
        _ => None,
    });
    let triggers = schema.items.iter().filter_map(|i| match &i.object {
        Object::Trigger(t) => {
            let name = t.name.unraw().to_string();
            let body = t.body.value();
            Some(quote!(::strata::__private::TriggerDef { name: #name, body: #body }))
        }
        _ => None,
    });
    let object_consts = schema.items.iter().filter_map(|i| {
        let (prefix, ty, value, attrs, ident) = match &i.object {
            Object::View(v) => {
                let name = v.name.unraw().to_string();
                let select = v.select.value();
                (
                    "VIEW",
                    quote!(::strata::__private::ViewDef),
                    quote!(::strata::__private::ViewDef { name: #name, select: #select }),
                    &v.attrs,
                    &v.name,
                )
            }
            Object::Trigger(t) => {
                let name = t.name.unraw().to_string();
                let body = t.body.value();
                (
                    "TRIGGER",
                    quote!(::strata::__private::TriggerDef),
                    quote!(::strata::__private::TriggerDef { name: #name, body: #body }),
                    &t.attrs,
                    &t.name,
                )
            }
            Object::Table(_) => return None,
        };
        let konst = format_ident!(
            "{}_{}",
            prefix,
            ident.unraw().to_string().to_uppercase(),
            span = ident.span()
        );
        let doc = format!(
            "The {} `{}`, as this migration declares it.",
            prefix.to_lowercase(),
            ident.unraw()
        );
        let user_docs = with_paragraph_break(docs(attrs));
        Some(quote! {
            #[doc = #doc]
            #(#user_docs)*
            #[allow(dead_code)]
            pub const #konst: #ty = #value;
        })
    });
    let own_tokens = schema.item_tokens();
    Ok(quote! {
        #(#modules)*
        #(#object_consts)*

        /// Every table of this role's database as this migration leaves it.
        #[allow(dead_code)]
        pub const SCHEMA: ::strata::Schema = ::strata::Schema::__new(
            &[#(<#table_mods::Table as ::strata::Table>::DEF),*],
            &[#(#views),*],
            &[#(#triggers),*],
            #schema_text,
        );

        // A later migration's `schema! { extends this_module; .. }` calls this with its own
        // declaration; this answers with that declaration after every object of this one.
        #[doc(hidden)]
        #[allow(unused_macros)]
        macro_rules! __strata_schema {
            ($($rest:tt)*) => {
                ::strata::schema! { @base { #own_tokens } $($rest)* }
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) use __strata_schema;
    })
}

/// Has SQLite create the declared schema in a scratch database, object by object, so that an
/// SQL expression, a collation, a type in a strict table or a view's query it rejects is a
/// compile error at the object.
fn check_with_sqlite(schema: &Schema) -> syn::Result<()> {
    let Ok(conn) = Connection::open_in_memory() else {
        return Ok(());
    };
    let mut errors: Option<syn::Error> = None;
    // In the order the runtime creates them (`Schema::ddl`): tables, then views, then triggers.
    let order = |o: &Object| match o {
        Object::Table(_) => 0,
        Object::View(_) => 1,
        Object::Trigger(_) => 2,
    };
    let mut items: Vec<_> = schema.items.iter().collect();
    items.sort_by_key(|i| order(&i.object));
    for item in items {
        for statement in item.object.ddl() {
            if let Err(e) = conn.execute_batch(&statement) {
                let err = syn::Error::new(
                    item.object.ident().span(),
                    format!(
                        "SQLite rejects {} `{}`: {e}\n  in: {statement}",
                        item.object.kind().word(),
                        item.object.name()
                    ),
                );
                match &mut errors {
                    Some(all) => all.combine(err),
                    None => errors = Some(err),
                }
                break;
            }
        }
    }
    errors.map_or(Ok(()), Err)
}

/// The span for code about a column's type: errors point at the type, names resolve where
/// `schema!` was called (which differs when an extending declaration passed it through).
fn at(ty: &Type) -> proc_macro2::Span {
    proc_macro2::Span::call_site().located_at(ty.span())
}

fn foreign_key_def(fk: &ForeignKey) -> TokenStream {
    let columns = fk.columns.iter().map(|c| c.unraw().to_string());
    let table = fk.table.unraw().to_string();
    let parents = fk.parent_columns.iter().map(|c| c.unraw().to_string());
    let on_delete = format_ident!("{}", fk.on_delete.variant());
    let on_update = format_ident!("{}", fk.on_update.variant());
    let deferrable = fk.deferrable;
    quote!(::strata::__private::ForeignKeyDef {
        columns: &[#(#columns),*],
        table: #table,
        parent_columns: &[#(#parents),*],
        on_delete: ::strata::__private::OnDelete::#on_delete,
        on_update: ::strata::__private::OnDelete::#on_update,
        deferrable: #deferrable,
    })
}

fn option_str(value: Option<String>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
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
        let autoincrement = c.autoincrement;
        let default = option_str(c.default.as_ref().map(|(_, sql)| sql.clone()));
        let collate = option_str(c.collate.as_ref().map(|c| c.unraw().to_string()));
        let check = option_str(c.check.as_ref().map(syn::LitStr::value));
        let generated = match &c.generated {
            Some((expr, stored)) => {
                let expr = expr.value();
                quote!(::core::option::Option::Some(::strata::__private::GeneratedDef { expr: #expr, stored: #stored }))
            }
            None => quote!(::core::option::Option::None),
        };
        let references = match &c.references {
            Some(fk) => {
                let def = foreign_key_def(fk);
                quote!(::core::option::Option::Some(#def))
            }
            None => quote!(::core::option::Option::None),
        };
        let sql_type = match &c.sql_type {
            Some(declared) => quote!(#declared),
            None => quote_spanned!(at(ty)=> <#ty as ::strata::SqlType>::SQL_TYPE),
        };
        let nullable = quote_spanned!(at(ty)=> <#ty as ::strata::SqlType>::NULLABLE);
        quote! {
            ::strata::__private::ColumnDef {
                name: #col,
                sql_type: #sql_type,
                nullable: #nullable,
                primary_key: #pk,
                autoincrement: #autoincrement,
                unique: #unique,
                default: #default,
                collate: #collate,
                check: #check,
                generated: #generated,
                references: #references,
            }
        }
    });
    let primary_key: Vec<String> = t
        .primary_key
        .as_ref()
        .map(|(_, cols)| cols.iter().map(|c| c.unraw().to_string()).collect())
        .unwrap_or_default();
    let uniques = t.uniques.iter().map(|u| {
        let cols = u.iter().map(|c| c.unraw().to_string());
        quote!(&[#(#cols),*])
    });
    let checks = t.checks.iter().map(syn::LitStr::value);
    let foreign_keys = t.foreign_keys.iter().map(foreign_key_def);
    let (strict, without_rowid) = (t.strict, t.without_rowid);
    let index_defs = t.indexes.iter().map(|i| {
        let i_name = i.name.unraw().to_string();
        let cols = i.terms.iter().map(|term| match &term.target {
            IndexTarget::Column(c) => c.unraw().to_string(),
            IndexTarget::Expr(e) => e.value(),
        });
        let terms = i.terms.iter().map(|term| {
            let (target, expression) = match &term.target {
                IndexTarget::Column(c) => (c.unraw().to_string(), false),
                IndexTarget::Expr(e) => (e.value(), true),
            };
            let collate = option_str(term.collate.as_ref().map(|c| c.unraw().to_string()));
            let desc = match term.desc {
                Some(d) => quote!(::core::option::Option::Some(#d)),
                None => quote!(::core::option::Option::None),
            };
            quote!(::strata::__private::IndexTermDef { target: #target, expression: #expression, collate: #collate, desc: #desc })
        });
        let unique = i.unique;
        let predicate = option_str(i.predicate.as_ref().map(syn::LitStr::value));
        quote!(::strata::__private::IndexDef {
            name: #i_name,
            columns: &[#(#cols),*],
            terms: &[#(#terms),*],
            unique: #unique,
            predicate: #predicate,
        })
    });
    let column_consts = t.columns.iter().enumerate().map(|(i, c)| {
        let konst = const_name(&c.name);
        let ty = &c.ty;
        let column_type = quote_spanned!(at(ty)=> ::strata::Column<Table, #ty>);
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
        let columns: Vec<String> = idx.terms.iter().map(|t| format!("`{}`", t.sql())).collect();
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
        quote_spanned!(at(ty)=> ::strata::__private::column_value::<#ty>(row, #i)?)
    });
    let values = t.columns.iter().map(|c| {
        let (ty, field) = (&c.ty, &c.name);
        quote_spanned!(at(ty)=> ::strata::__private::sql_param::<#ty>(&self.#field))
    });
    let row_doc = format!("A row of `{name}`, as this migration declares it.");
    let table_doc = format!("The `{name}` table, as this migration declares it.");
    quote! {
        #(#attrs)*
        #(#[doc = #module_doc])*
        #[allow(dead_code, unused_imports, non_snake_case, clippy::all)]
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
                    uniques: &[#(#uniques),*],
                    checks: &[#(#checks),*],
                    foreign_keys: &[#(#foreign_keys),*],
                    strict: #strict,
                    without_rowid: #without_rowid,
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
        let schema = strata_syntax::parse_strict(
            "table notes { creator: Uuid references accounts(id) on delete cascade, \
             title: Option<String> as \"VARCHAR(100)\" unique = \"untitled\" }"
                .parse()
                .unwrap(),
        )
        .unwrap_or_else(|_| panic!("parse"))
        .schema;
        let t = schema.tables().next().unwrap();
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
