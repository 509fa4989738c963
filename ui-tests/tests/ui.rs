//! Compile-pass and compile-fail cases of the macros. The `.stderr` files hold rustc's
//! exact output, which changes between compiler releases, so the cases run on the
//! toolchain they were recorded with only. Re-record with
//! `TRYBUILD=overwrite cargo test -p capstan-ui-tests`.

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
