//! `sql!("..")`: the literal itself, after SQLite's parser has accepted its syntax.

use std::ffi::CString;

use proc_macro2::TokenStream;
use quote::quote;
use rusqlite::Connection;
use syn::LitStr;

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
