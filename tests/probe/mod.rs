//! The probe application's migrations (role `main`).

strata::migrations!();

pub mod m20240101000000_create_people;
pub mod m20240102000000_slow_fill;
pub mod m20240103000000_split_names;
pub mod m20240104000000_compact;

/// Milliseconds from an environment variable, 0 when unset.
pub(crate) fn env_ms(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
