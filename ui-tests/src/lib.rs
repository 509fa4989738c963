//! Compile-pass and compile-fail tests of Capstan's macros; see `tests/ui.rs`.
