//! Canonical text of token streams, the input of migration checksums.
//!
//! Whitespace, comments and line endings never reach a token stream; doc comments do (as
//! `#[doc = ".."]` attributes) and are skipped here, so editing prose never changes a checksum.

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// One space-separated token per token tree, with `#[doc = ..]` attributes removed.
pub fn canonical(tokens: TokenStream) -> String {
    let mut out = String::new();
    write(tokens, &mut out);
    out
}

fn write(tokens: TokenStream, out: &mut String) {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < trees.len() {
        if is_doc_attribute(&trees[i..]) {
            // `#` (`!`) `[doc = ..]`
            i += if matches!(&trees[i + 1], TokenTree::Punct(p) if p.as_char() == '!') {
                3
            } else {
                2
            };
            continue;
        }
        match &trees[i] {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                out.push(' ');
                write(g.stream(), out);
                out.push_str(close);
                out.push(' ');
            }
            TokenTree::Ident(id) => {
                out.push_str(&id.to_string());
                out.push(' ');
            }
            TokenTree::Punct(p) => {
                out.push(p.as_char());
                if p.spacing() == Spacing::Alone {
                    out.push(' ');
                }
            }
            TokenTree::Literal(l) => {
                out.push_str(&l.to_string().replace("\r\n", "\n"));
                out.push(' ');
            }
        }
        i += 1;
    }
}

fn is_doc_attribute(trees: &[TokenTree]) -> bool {
    let TokenTree::Punct(hash) = &trees[0] else {
        return false;
    };
    if hash.as_char() != '#' {
        return false;
    }
    let group = match trees.get(1) {
        Some(TokenTree::Punct(p)) if p.as_char() == '!' => trees.get(2),
        other => other,
    };
    let Some(TokenTree::Group(g)) = group else {
        return false;
    };
    if g.delimiter() != Delimiter::Bracket {
        return false;
    }
    matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(id)) if id == "doc")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonical(s.parse().unwrap())
    }

    #[test]
    fn ignores_layout_comments_and_docs() {
        let a = canon("fn f(tx: &mut Tx) -> Result<()> { tx.run(\"x\") }");
        let b = canon(
            "/// Docs.\r\nfn f( tx : &mut Tx )\r\n  -> Result<()> {\r\n // note\r\n  tx.run(\"x\")\r\n}",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn sees_code_changes() {
        assert_ne!(canon("fn f() { a(1) }"), canon("fn f() { a(2) }"));
        assert_ne!(canon("fn f() { a - -b }"), canon("fn f() { a -- b }"));
        assert_ne!(
            canon("fn f() { x(\"a b\") }"),
            canon("fn f() { x(\"a  b\") }")
        );
    }
}
