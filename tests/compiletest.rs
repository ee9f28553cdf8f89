//! Compile-fail tests: each `ui/<mistake>.rs` must fail to compile with the reviewed
//! `ui/<mistake>.stderr`. After a toolchain upgrade, regenerate with
//! `TRYBUILD=overwrite cargo test -p strata-tests --test compiletest` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
