//! Compile-pass and compile-fail cases of the macros. The `.stderr` files hold rustc's
//! exact output, which changes between compiler releases, so the cases run on the
//! toolchain they were recorded with only: rustc 1.95 (stable). On any other compiler the
//! test passes and prints that it was skipped. Re-record with
//! `TRYBUILD=overwrite cargo test -p capstan-ui-tests`, then read every changed `.stderr`.
//!
//! One pass case lives outside `tests/ui/pass`: Cargo allows one name per dependency, so
//! the macros through a renamed `capstan` (`#[workflow(crate = capstan_renamed)]`) are
//! the crate `ui-tests/renamed`, which these tests depend on and so always compile.

#[rustversion::stable(1.95)]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}

#[rustversion::not(stable(1.95))]
#[test]
fn ui() {
    println!("skipped: ui tests are pinned to rustc 1.95");
}
