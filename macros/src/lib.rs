//! Implementation detail of the `strata` crate: `#[migration]`, `schema!` and `sql!`.
//!
//! Each macro parses its input, validates it (reporting every error of the item at once, at the
//! tokens at fault), then expands to code that names only `::strata::…` paths.

use proc_macro::TokenStream;

mod canonical;
mod migration;
mod schema;
mod sql;
mod version;

/// Registers a migration. See the `strata` crate.
#[proc_macro_attribute]
pub fn migration(args: TokenStream, item: TokenStream) -> TokenStream {
    // The file the migration is written in, read as it is on disk: the review shows it.
    let file = item
        .clone()
        .into_iter()
        .next()
        .and_then(|t| t.span().local_file());
    let source = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
    let dir = file.and_then(|f| f.parent().map(std::path::Path::to_path_buf));
    migration::expand(args.into(), item.into(), source, dir).into()
}

/// Declares the tables a migration leaves behind. See the `strata` crate.
#[proc_macro]
pub fn schema(input: TokenStream) -> TokenStream {
    schema::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// An SQL file's text, checked by SQLite's parser at compile time. See the `strata` crate.
#[proc_macro]
pub fn sql_file(input: TokenStream) -> TokenStream {
    let dir = proc_macro::Span::call_site()
        .local_file()
        .and_then(|f| f.parent().map(std::path::Path::to_path_buf));
    sql::expand_file(input.into(), dir)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// An SQL string literal checked by SQLite's parser at compile time. See the `strata` crate.
#[proc_macro]
pub fn sql(input: TokenStream) -> TokenStream {
    sql::expand(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
