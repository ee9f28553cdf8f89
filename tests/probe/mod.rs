//! The probe application's migrations (role `main`).

strata::migrations!();

/// People, with full names.
pub mod m20240101000000_create_people;
/// Fills `items` slowly (a long migration to kill mid-way).
pub mod m20240102000000_slow_fill;
/// Splits full names into first and last names (a typed table rebuild).
pub mod m20240103000000_split_names;
/// Compacts the database (a `no_transaction` migration).
pub mod m20240104000000_compact;

/// Milliseconds from an environment variable, 0 when unset.
pub(crate) fn env_ms(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
