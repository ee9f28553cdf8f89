//! `sql!("..")`: the literal itself, after SQLite's parser has accepted its syntax.

use std::ffi::CString;

use proc_macro2::TokenStream;
use quote::quote;
use rusqlite::Connection;
use syn::LitStr;

/// `sql_file!("path.sql")`: the file's text (the path relative to the invoking source file, as
/// `include_str!` has it), after SQLite's parser accepted it. The expansion also names the file
/// through `include_str!`, so that editing it rebuilds the crate; `#[migration]` puts its
/// content into the checksum.
pub fn expand_file(
    input: TokenStream,
    dir: Option<std::path::PathBuf>,
) -> syn::Result<TokenStream> {
    let lit: LitStr = syn::parse2(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "sql_file! takes one string literal, the path of an SQL file relative to this \
             source file: sql_file!(\"m20240101000000.sql\")",
        )
    })?;
    let Some(dir) = dir else {
        return Err(syn::Error::new(
            lit.span(),
            "sql_file!: cannot tell which file this is in (no source location)",
        ));
    };
    let path = dir.join(lit.value());
    let text = std::fs::read_to_string(&path).map_err(|e| {
        syn::Error::new(
            lit.span(),
            format!("sql_file!: reading {}: {e}", path.display()),
        )
    })?;
    check(&text).map_err(|msg| syn::Error::new(lit.span(), format!("{}: {msg}", lit.value())))?;
    // `include_str!` resolves relative paths from the invoking file: give it an absolute one.
    let tracked = std::fs::canonicalize(&path)
        .unwrap_or(path)
        .display()
        .to_string();
    Ok(quote!({
        const _: &str = ::core::include_str!(#tracked);
        #text
    }))
}

pub fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let lit: LitStr = syn::parse2(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "sql! takes one string literal: sql!(\"SELECT ..\")",
        )
    })?;
    check(&lit.value()).map_err(|msg| syn::Error::new(lit.span(), msg))?;
    Ok(quote!(#lit))
}

/// Splits `sql` into statements and has SQLite prepare each against an empty database.
/// Syntax errors are reported; errors about names (tables of earlier migrations) are not.
pub fn check(sql: &str) -> Result<(), String> {
    let statements = split(sql);
    if statements.is_empty() {
        return Err("sql! needs at least one SQL statement".into());
    }
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    for statement in statements {
        if let Err(e) = conn.prepare(&statement) {
            let msg = e.to_string();
            if is_syntax_error(&msg) {
                return Err(format!("SQLite rejects this SQL: {msg}"));
            }
        }
    }
    Ok(())
}

fn is_syntax_error(msg: &str) -> bool {
    msg.contains("syntax error")
        || msg.contains("incomplete input")
        || msg.contains("unrecognized token")
}

/// Statements of `sql`, cut where SQLite considers the text so far complete.
fn split(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in sql.char_indices() {
        if c == ';' && complete(&sql[start..=i]) {
            out.push(sql[start..=i].to_string());
            start = i + 1;
        }
    }
    out.push(sql[start..].to_string());
    out.retain(|s| !s.trim().trim_end_matches(';').trim().is_empty());
    out
}

// SQLite's own statement splitter (`sqlite3_complete`) has no safe binding in rusqlite.
#[allow(unsafe_code)]
fn complete(sql: &str) -> bool {
    let Ok(c) = CString::new(sql) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_valid_sql_referring_to_unknown_tables() {
        assert!(check("SELECT id FROM notes WHERE creator = ?1").is_ok());
        assert!(check("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);").is_ok());
        assert!(check("UPDATE x SET a = ';' WHERE b = 1").is_ok());
    }

    #[test]
    fn rejects_syntax_errors() {
        assert!(check("SELEC 1").unwrap_err().contains("syntax error"));
        assert!(check("CREATE TABLE t (a INTEGER,)").is_err());
        assert!(check("SELECT 1; SELECT FROM WHERE").is_err());
        assert!(
            check("INSERT INTO t VALUES (1")
                .unwrap_err()
                .contains("incomplete input")
        );
        assert!(check("  ").is_err());
    }
}
