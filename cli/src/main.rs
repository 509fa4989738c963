//! `capstan stubs --lang python|typescript MANIFEST [--out FILE]`: a typed client for
//! another language's Temporal SDK, generated from a worker's schema manifest.
//!
//! The manifest comes from the worker's own program, which alone knows what it registers:
//! `capstan::schema::Manifest::from_worker(&worker)` (the examples' binary does it as
//! `capstan-examples schema --out manifest.json`).

use std::process::ExitCode;

use capstan_codegen::stubs::{self, Language};

const USAGE: &str = "usage:
  capstan stubs --lang python|typescript MANIFEST.json [--out FILE]

MANIFEST.json is a worker's schema manifest: write it from the worker's program with
`capstan::schema::Manifest::from_worker(&worker).to_json_pretty()`.";

struct Args {
    language: Language,
    manifest: String,
    out: Option<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    match args.next().as_deref() {
        Some("stubs") => {}
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command `{other}`")),
    }
    let (mut language, mut manifest, mut out) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match arg.as_str() {
            "--lang" => {
                let name = value("--lang")?;
                language = Some(name.parse::<Language>().map_err(|e| e.to_string())?);
            }
            "--out" => out = Some(value("--out")?),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => return Err(format!("unknown argument `{flag}`")),
            path if manifest.is_none() => manifest = Some(path.to_owned()),
            extra => return Err(format!("one manifest only; found `{extra}` too")),
        }
    }
    Ok(Args {
        language: language.ok_or("`--lang` is required")?,
        manifest: manifest.ok_or("the manifest file is required")?,
        out,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.manifest)
        .map_err(|e| format!("cannot read `{}`: {e}", args.manifest))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("`{}` is not JSON: {e}", args.manifest))?;
    let code = stubs::generate(args.language, &manifest)
        .map_err(|e| format!("`{}`: {e}", args.manifest))?;
    match &args.out {
        Some(path) => std::fs::write(path, code).map_err(|e| format!("cannot write `{path}`: {e}")),
        None => {
            print!("{code}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let outcome = parse_args(std::env::args().skip(1))
        .map_err(|usage| (usage, true))
        .and_then(|args| run(&args).map_err(|message| (message, false)));
    let Err((message, show_usage)) = outcome else {
        return ExitCode::SUCCESS;
    };
    if !message.is_empty() {
        eprintln!("error: {message}");
    }
    if show_usage {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    ExitCode::FAILURE
}
