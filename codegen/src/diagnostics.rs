//! Error collection and the small text helpers the messages share.

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Collects every error of one macro call so the user sees them all in one compile
/// (serde's `Ctxt`, darling's accumulator), each at its own token.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records an error spanning `tokens`.
    pub(crate) fn error(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error that was already built (by syn or darling).
    pub(crate) fn push(&mut self, error: impl Into<syn::Error>) {
        let error = error.into();
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    /// The `compile_error!` invocations, or nothing.
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.combined
            .map(syn::Error::into_compile_error)
            .unwrap_or_default()
    }
}

/// The closest of `candidates` to `found`, if it is close enough to be a typo.
pub(crate) fn did_you_mean<'a>(found: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::jaro_winkler(found, candidate), *candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Source text of a type or path as a user would write it: `Vec<String>`, not
/// `Vec < String >`.
pub(crate) fn source(tokens: &impl ToTokens) -> String {
    let text: Vec<char> = tokens.to_token_stream().to_string().chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in text.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = text.get(i + 1).copied();
            let path_sep_before = out.ends_with("::");
            let path_sep_after = next == Some(':') && text.get(i + 2) == Some(&':');
            let glue_before =
                path_sep_before || matches!(prev, Some('<' | '&' | '(' | '[' | '!' | '\''));
            let generic =
                next == Some('<') && prev.is_some_and(|p| p.is_alphanumeric() || p == '_');
            let glue_after = path_sep_after
                || generic
                || matches!(next, Some('>' | ',' | ')' | ']' | '(' | ';'));
            // `x : u8` reads `x: u8`.
            let before_colon = next == Some(':') && !path_sep_after;
            if glue_before || glue_after || before_colon {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
pub(crate) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_reads_like_code() {
        let ty: syn::Type =
            syn::parse_quote!(Vec<::std::collections::HashMap<String, &'static str>>);
        assert_eq!(
            source(&ty),
            "Vec<::std::collections::HashMap<String, &'static str>>"
        );
        let ty: syn::Type = syn::parse_quote!(&mut self_type::Foo);
        assert_eq!(source(&ty), "&mut self_type::Foo");
        let arg: syn::FnArg = syn::parse_quote!(x: <T as Trait>::Out);
        assert_eq!(source(&arg), "x: <T as Trait>::Out");
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(
            did_you_mean("validater", &["name", "validator"]),
            Some("validator")
        );
        assert_eq!(did_you_mean("nmae", &["name", "validator"]), Some("name"));
        assert_eq!(did_you_mean("timeout", &["name", "validator"]), None);
        assert_eq!(
            one_of(&["name", "validator", "crate"]),
            "`name`, `validator` or `crate`"
        );
    }
}
