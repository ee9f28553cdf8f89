//! `#[migration(VERSION, ..)]`: parse → validate → expand.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, LitInt, Meta, Path, ReturnType, Token, Type};

use crate::canonical::canonical;
use crate::version;

/// The attribute's arguments, as written.
struct Args {
    /// The literal and its value, once validated.
    version: Option<(LitInt, i64)>,
    role: Option<String>,
    no_transaction: bool,
    baseline: bool,
    /// Declared a contract: old binaries cannot serve on what it leaves behind.
    contract: bool,
    foreign_keys_off: bool,
    down: Option<Path>,
    test_data: Option<Path>,
    /// `None` = default `SCHEMA`; `Some(None)` = `schema = none`.
    schema: Option<Option<Path>>,
    /// `imported = "tool:version"`: the peer migration (sqlx, refinery, diesel, goose) this one
    /// was imported from; a database whose peer history has it applied records it unrun.
    imported: Option<syn::LitStr>,
}

/// Collects every error of the item before giving up, as serde does.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    /// An error covering all of `tokens`.
    fn at(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }
    fn at_span(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
}

const KNOWN: &str = "role = \"..\", no_transaction, foreign_keys = off, down = fn_name, \
                     test_data = fn_name, schema = PATH | none, baseline, contract, \
                     imported = \"tool:version\"";

/// The migration tools whose history tables the runner reads to adopt imported migrations.
const PEERS: [&str; 4] = ["sqlx", "refinery", "diesel", "goose"];

/// `source`: the text of the file the migration is in, when it could be read (the review shows
/// it); otherwise the function's tokens.
/// `dir`: the directory of that file, where `sql_file!` paths in the function start.
pub fn expand(
    args: TokenStream,
    item: TokenStream,
    source: Option<String>,
    dir: Option<std::path::PathBuf>,
) -> TokenStream {
    let mut errors = Errors::default();
    let Ok(function) = syn::parse2::<ItemFn>(item.clone()) else {
        let e = syn::Error::new(
            Span::call_site(),
            "#[migration] goes on a function: \
             `fn name(tx: &mut strata::Tx) -> strata::Result<()>`",
        );
        let mut out = e.into_compile_error();
        out.extend(item);
        return out;
    };
    let args = parse_args(args, &mut errors);
    validate_signature(&function, &mut errors);
    let version = args.version.as_ref().map(|(_, v)| *v);
    match (errors.0, version) {
        (None, Some(version)) => {
            let source = source.unwrap_or_else(|| function.to_token_stream().to_string());
            let mut files = Vec::new();
            collect_sql_files(
                &function.block.to_token_stream(),
                dir.as_deref(),
                &mut files,
            );
            // An imported migration applies its peer's SQL through (at most) one file, whose
            // text the runner hashes as the peer did to check the peer's checksum.
            if let (Some(lit), true) = (&args.imported, files.len() > 1) {
                return compile_error_with(
                    syn::Error::new(
                        lit.span(),
                        "an imported migration applies its peer's SQL from one file: \
                         `tx.execute_batch(strata::sql_file!(\"..\"))`, once",
                    ),
                    function,
                );
            }
            registration(&function, &args, version, &source, &files)
        }
        (errors, _) => {
            // The function is still emitted so that errors inside it are reported too.
            let mut out = errors
                .map(syn::Error::into_compile_error)
                .unwrap_or_default();
            out.extend(function.into_token_stream());
            out
        }
    }
}

fn parse_args(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args {
        version: None,
        role: None,
        no_transaction: false,
        baseline: false,
        contract: false,
        foreign_keys_off: false,
        down: None,
        test_data: None,
        schema: None,
        imported: None,
    };
    let metas = match Punctuated::<Expr, Token![,]>::parse_terminated.parse2(tokens.clone()) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return args;
        }
    };
    let mut metas = metas.into_iter();
    match metas.next() {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        })) => match version::validate(&lit) {
            Ok(v) => args.version = Some((lit, v)),
            Err(e) => errors.push(e),
        },
        Some(other) => errors.at(
            &other,
            "expected the migration version first, a UTC timestamp: \
             `#[migration(20240226153000)]`",
        ),
        None => errors.at_span(
            Span::call_site(),
            "missing version: `#[migration(20240226153000)]` (a UTC timestamp YYYYMMDDHHMMSS)",
        ),
    }
    let mut seen: Vec<String> = Vec::new();
    for expr in metas {
        let Ok(meta) = syn::parse2::<Meta>(expr.to_token_stream()) else {
            errors.at(
                &expr,
                format!("unexpected argument; expected one of: {KNOWN}"),
            );
            continue;
        };
        let key = meta.path().to_token_stream().to_string();
        if seen.contains(&key) {
            errors.at(meta.path(), format!("`{key}` is given twice"));
            continue;
        }
        seen.push(key.clone());
        match (key.as_str(), &meta) {
            ("no_transaction", Meta::Path(_)) => args.no_transaction = true,
            ("baseline", Meta::Path(_)) => args.baseline = true,
            ("contract", Meta::Path(_)) => args.contract = true,
            ("role", Meta::NameValue(nv)) => match word(&nv.value) {
                Some(role) if valid_role(&role) => args.role = Some(role),
                _ => errors.at(
                    &nv.value,
                    "role must be a lowercase name like `\"notes\"` (letters, digits, `_`)",
                ),
            },
            ("foreign_keys", Meta::NameValue(nv)) => match word(&nv.value).as_deref() {
                Some("off") => args.foreign_keys_off = true,
                Some("on") => args.foreign_keys_off = false,
                _ => errors.at(
                    &nv.value,
                    "expected `foreign_keys = off` or `foreign_keys = on`",
                ),
            },
            ("down", Meta::NameValue(nv)) => match &nv.value {
                Expr::Path(p) => args.down = Some(p.path.clone()),
                other => errors.at(other, "expected the name of the down function: `down = f`"),
            },
            ("test_data", Meta::NameValue(nv)) => match &nv.value {
                Expr::Path(p) => args.test_data = Some(p.path.clone()),
                other => errors.at(
                    other,
                    "expected the name of the test data function: `test_data = f`",
                ),
            },
            ("schema", Meta::NameValue(nv)) => match &nv.value {
                Expr::Path(p) if p.path.is_ident("none") => args.schema = Some(None),
                Expr::Path(p) => args.schema = Some(Some(p.path.clone())),
                other => errors.at(other, "expected `schema = PATH` or `schema = none`"),
            },
            ("imported", Meta::NameValue(nv)) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) if valid_peer(&s.value()) => args.imported = Some(s.clone()),
                other => errors.at(
                    other,
                    format!(
                        "expected `imported = \"tool:version\"`, the peer migration this one was \
                         imported from, with tool one of {}: e.g. `imported = \"sqlx:20240226153000\"`",
                        PEERS.join(", ")
                    ),
                ),
            },
            (
                "no_transaction" | "baseline" | "contract" | "role" | "foreign_keys" | "down"
                | "test_data" | "schema" | "imported",
                _,
            ) => {
                let usage = match key.as_str() {
                    "no_transaction" => "no_transaction",
                    "baseline" => "baseline",
                    "contract" => "contract",
                    "role" => "role = \"notes\"",
                    "foreign_keys" => "foreign_keys = off",
                    "down" => "down = fn_name",
                    "test_data" => "test_data = fn_name",
                    "imported" => "imported = \"sqlx:20240226153000\"",
                    _ => "schema = PATH",
                };
                errors.at(&meta, format!("expected `{usage}`"));
            }
            _ => errors.at(
                meta.path(),
                format!("unknown argument `{key}`; expected one of: {KNOWN}"),
            ),
        }
    }
    args
}

/// A string literal or a bare identifier.
fn word(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
        _ => None,
    }
}

/// `tool:version`: a known tool and a version made of letters, digits, `-`, `_` or `.`.
fn valid_peer(peer: &str) -> bool {
    peer.split_once(':').is_some_and(|(tool, version)| {
        PEERS.contains(&tool)
            && !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    })
}

/// `error` and the function, emitted as it is so that errors inside it are reported too.
fn compile_error_with(error: syn::Error, function: ItemFn) -> TokenStream {
    let mut out = error.into_compile_error();
    out.extend(function.into_token_stream());
    out
}

fn valid_role(role: &str) -> bool {
    !role.is_empty()
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn expected_signature(f: &ItemFn) -> String {
    format!(
        "expected `fn {}(tx: &mut strata::Tx) -> strata::Result<()>`",
        f.sig.ident
    )
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.last().is_some_and(|s| s.ident == name))
}

fn validate_signature(f: &ItemFn, errors: &mut Errors) {
    let sig = &f.sig;
    let expected = expected_signature(f);
    if let Some(a) = &sig.asyncness {
        errors.at(
            a,
            format!("migrations run synchronously; remove `async` ({expected})"),
        );
    }
    if let Some(c) = &sig.constness {
        errors.at(c, format!("a migration cannot be `const` ({expected})"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.at(
            &sig.generics,
            format!("a migration cannot be generic ({expected})"),
        );
    }
    if sig.inputs.len() != 1 {
        let msg = format!("a migration takes exactly one argument; {expected}");
        if sig.inputs.is_empty() {
            errors.at_span(sig.paren_token.span.join(), msg);
        } else {
            errors.at(&sig.inputs, msg);
        }
    } else {
        match &sig.inputs[0] {
            FnArg::Receiver(r) => {
                errors.at(r, format!("a migration is a free function; {expected}"));
            }
            FnArg::Typed(arg) => {
                let ok = matches!(&*arg.ty, Type::Reference(r)
                    if r.mutability.is_some() && last_segment_is(&r.elem, "Tx"));
                if !ok {
                    errors.at(
                        &arg.ty,
                        format!("the argument must be `&mut strata::Tx`; {expected}"),
                    );
                }
            }
        }
    }
    match &sig.output {
        ReturnType::Default => errors.at_span(
            sig.paren_token.span.join(),
            format!("a migration returns `strata::Result<()>`; {expected}"),
        ),
        ReturnType::Type(_, ty) if !last_segment_is(ty, "Result") => errors.at(
            ty,
            format!("a migration returns `strata::Result<()>`; {expected}"),
        ),
        ReturnType::Type(..) => {}
    }
}

fn description(f: &ItemFn) -> String {
    let lines: Vec<String> = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|l| l.strip_prefix(' ').unwrap_or(&l).trim_end().to_string())
        .collect();
    lines.join("\n").trim().to_string()
}

/// The path and text of every `sql_file!("..")` the function names (in order), so that the
/// checksum covers the files' content, not only their names.
fn collect_sql_files(
    tokens: &TokenStream,
    dir: Option<&std::path::Path>,
    out: &mut Vec<(String, String)>,
) {
    use proc_macro2::TokenTree;
    let list: Vec<TokenTree> = tokens.clone().into_iter().collect();
    for (i, t) in list.iter().enumerate() {
        match t {
            TokenTree::Group(g) => collect_sql_files(&g.stream(), dir, out),
            TokenTree::Ident(id) if id == "sql_file" => {
                let bang =
                    matches!(list.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                if let (true, Some(TokenTree::Group(g)), Some(dir)) = (bang, list.get(i + 2), dir)
                    && let Ok(lit) = syn::parse2::<syn::LitStr>(g.stream())
                {
                    let text = std::fs::read_to_string(dir.join(lit.value())).unwrap_or_default();
                    out.push((lit.value(), text));
                }
            }
            _ => {}
        }
    }
}

/// The checksum's text for the SQL files of [`collect_sql_files`].
fn sql_files_text(files: &[(String, String)]) -> String {
    files
        .iter()
        .map(|(path, text)| format!("sql_file:{path}:{}:{text};", text.len()))
        .collect()
}

#[cfg(test)]
fn sql_files(tokens: &TokenStream, dir: Option<&std::path::Path>) -> String {
    let mut files = Vec::new();
    collect_sql_files(tokens, dir, &mut files);
    sql_files_text(&files)
}

fn registration(
    f: &ItemFn,
    args: &Args,
    version: i64,
    source: &str,
    sql_files: &[(String, String)],
) -> TokenStream {
    let files = sql_files_text(sql_files);
    let ident = &f.sig.ident;
    let name = ident.to_string();
    let description = description(f);
    let role = args.role.clone().unwrap_or_else(|| "main".to_string());
    let transaction = !args.no_transaction;
    let baseline = args.baseline;
    let contract = args.contract;
    let fk = if args.foreign_keys_off {
        quote!(Off)
    } else {
        quote!(Enforce)
    };
    // The checksum covers the function (without its doc comment) and every argument that
    // changes what applying it does. Not `contract`: it says when the migration may run during
    // a deploy, not what it does, and may be declared after the migration was applied.
    let tokens = format!(
        "role={role};transaction={transaction};foreign_keys_off={};{}{}{files}",
        args.foreign_keys_off,
        if args.baseline { "baseline;" } else { "" },
        canonical(f.to_token_stream())
    );
    let optional_fn = |path: &Option<Path>| match path {
        Some(p) => quote_spanned!(p.span()=> ::core::option::Option::Some(#p)),
        None => quote!(::core::option::Option::None),
    };
    let down = optional_fn(&args.down);
    let test_data = optional_fn(&args.test_data);
    let version_span = args
        .version
        .as_ref()
        .map(|(l, _)| l.span())
        .unwrap_or_else(Span::call_site);
    let schema = match &args.schema {
        Some(Some(p)) => quote_spanned!(p.span()=> ::core::option::Option::Some(&#p)),
        Some(None) => quote!(::core::option::Option::None),
        None => {
            let default = quote_spanned!(version_span=> SCHEMA);
            quote!(::core::option::Option::Some(&#default))
        }
    };
    let up = quote_spanned!(ident.span()=> #ident);
    // Not part of the checksum: where a migration came from does not change what it does.
    let (imported, imported_sql) = match &args.imported {
        Some(peer) => {
            let sql = match sql_files.first() {
                Some((path, text)) => quote!(::core::option::Option::Some((#path, #text))),
                None => quote!(::core::option::Option::None),
            };
            (quote!(::core::option::Option::Some(#peer)), sql)
        }
        None => (
            quote!(::core::option::Option::None),
            quote!(::core::option::Option::None),
        ),
    };
    // Two migrations of one crate with the same version and role define the same crate-level
    // macro name, which says what is wrong: rustc rejects the second at compile time. Other
    // roles (other databases) may use the version too.
    let marker = format_ident!(
        "migration_version_{}_is_used_twice_in_role_{}",
        version as u64,
        role,
        span = version_span
    );
    let marker_doc = format!(
        "Version {version} of role `{role}` is taken in this crate, by `{name}`: a second \
         migration of that role with it fails to compile."
    );
    // A `pub` migration without a doc comment still passes `missing_docs`. (Not part of the
    // description nor of the checksum, which are taken from the function as written.)
    let fn_doc = (!f.attrs.iter().any(|a| a.path().is_ident("doc")))
        .then(|| format!("Migration {version} `{name}` of role `{role}`, run by the migrator."))
        .into_iter();
    quote! {
        #(#[doc = #fn_doc])*
        #f

        ::strata::__private::inventory::submit! {
            ::strata::Migration::__new(::strata::__private::MigrationDef {
                version: #version,
                name: #name,
                description: #description,
                role: #role,
                module: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
                tokens: #tokens,
                source: #source,
                transaction: #transaction,
                baseline: #baseline,
                contract: #contract,
                foreign_keys: ::strata::ForeignKeys::#fk,
                up: #up,
                down: #down,
                test_data: #test_data,
                schema: #schema,
                imported: #imported,
                imported_sql: #imported_sql,
            })
        }

        #[doc = #marker_doc]
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #marker { () => {}; }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_names_a_known_tool_and_a_version() {
        assert!(valid_peer("sqlx:20240226153000"));
        assert!(valid_peer("diesel:20240226153000"));
        assert!(valid_peer("goose:1"));
        assert!(valid_peer("refinery:12"));
        assert!(!valid_peer("flyway:1"));
        assert!(!valid_peer("sqlx:"));
        assert!(!valid_peer("sqlx"));
        assert!(!valid_peer("sqlx:1 OR 1"));
    }

    #[test]
    fn imported_is_parsed_outside_the_checksum() {
        let item: TokenStream = quote! {
            fn create_users(tx: &mut Tx) -> Result<()> { tx.execute_batch("x") }
        };
        let with = expand(
            quote!(20240226153000, imported = "sqlx:20240226153000"),
            item.clone(),
            None,
            None,
        )
        .to_string();
        let without = expand(quote!(20240226153000), item.clone(), None, None).to_string();
        assert!(with.contains("\"sqlx:20240226153000\""), "{with}");
        // The checksum's text (`tokens: ..`) is the same with and without it.
        let tokens = |s: &str| {
            s.split("tokens :")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(tokens(&with), tokens(&without));
        let bad = expand(
            quote!(20240226153000, imported = "flyway:1"),
            item,
            None,
            None,
        )
        .to_string();
        assert!(
            bad.contains("compile_error") && bad.contains("tool:version"),
            "{bad}"
        );
    }

    #[test]
    fn the_checksum_text_covers_what_sql_files_contain() {
        let dir = std::env::temp_dir().join(format!("strata-sql-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let body: TokenStream = quote!({ tx.execute_batch(strata::sql_file!("a.sql")) });
        std::fs::write(dir.join("a.sql"), "CREATE TABLE a (x);").unwrap();
        let first = sql_files(&body, Some(&dir));
        assert!(first.contains("CREATE TABLE a (x);"), "{first}");
        // The same code, the file edited: another text, so another checksum.
        std::fs::write(dir.join("a.sql"), "CREATE TABLE a (x, y);").unwrap();
        assert_ne!(sql_files(&body, Some(&dir)), first);
        // No sql_file!: nothing added (existing checksums stay as they were).
        assert_eq!(
            sql_files(&quote!({ tx.execute_batch("x") }), Some(&dir)),
            ""
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
