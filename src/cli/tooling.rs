//! `completion`, `man` and `version`: what a user looks for first. Completions and man pages
//! are generated from the same clap definitions as the parser (`Cli`), so they cannot drift
//! from the flags; the version names the git commit built from (build.rs).

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use serde_json::json;

use super::exit::{ExitCode, Failure};
use super::stdout::{outln, write_all};
use super::{Cli, Output};

/// `sigil --version` and `sigil version`: the version and the commit (with "-dirty" when the
/// tracked files differed from it).
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SIGIL_GIT_SOURCE"), ")");

/// `sigil completion` flags.
#[derive(Args, Debug)]
pub(crate) struct CompletionArgs {
    /// The shell (e.g. `sigil completion bash > /etc/bash_completion.d/sigil`).
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// `sigil man` flags.
#[derive(Args, Debug)]
pub(crate) struct ManArgs {
    /// Write sigil.1 and one page per subcommand (sigil-verify.1, …) into this existing folder
    /// instead of sigil.1 on stdout.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `sigil version` flags.
#[derive(Args, Debug)]
pub(crate) struct VersionArgs {
    /// Output format (json: {"version", "commit", "dirty"}).
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: Output,
}

/// `sigil completion SHELL`.
pub(crate) fn completion(args: CompletionArgs) -> Result<ExitCode, Failure> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "sigil", &mut script);
    write_all(&script);
    Ok(ExitCode::Ok)
}

/// `sigil man [--dir DIR]`.
pub(crate) fn man(args: ManArgs) -> Result<ExitCode, Failure> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Gives each subcommand its full name ("sigil verify"), which names its page.
    cmd.build();
    match args.dir {
        None => write_all(&render(&cmd)?),
        Some(dir) => {
            let mut written = 0;
            write_pages(&cmd, &dir, &mut written)?;
            eprintln!("{written} man page(s) written to {}", dir.display());
        }
    }
    Ok(ExitCode::Ok)
}

/// One command's page.
fn render(cmd: &clap::Command) -> Result<Vec<u8>, Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page).map_err(|e| {
        Failure::new(
            ExitCode::Error,
            format!("cannot render the man page of {}: {e}", cmd.get_name()),
            "report this bug",
        )
    })?;
    Ok(page)
}

/// The pages of `cmd` and of every subcommand below it.
fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut usize) -> Result<(), Failure> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    std::fs::write(&path, render(cmd)?).map_err(|e| {
        Failure::new(
            ExitCode::Error,
            format!("cannot write {}: {e}", path.display()),
            "pass an existing, writable folder to --dir",
        )
    })?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

/// `sigil version`.
pub(crate) fn version(args: VersionArgs) -> Result<ExitCode, Failure> {
    match args.output {
        Output::Text => outln!("sigil {VERSION}"),
        Output::Json => {
            let dirty = match env!("SIGIL_GIT_DIRTY") {
                "true" => json!(true),
                "false" => json!(false),
                _ => json!(null),
            };
            outln!(
                "{}",
                json!({"version": env!("CARGO_PKG_VERSION"), "commit": env!("SIGIL_GIT_COMMIT"), "dirty": dirty})
            )
        }
    }
    Ok(ExitCode::Ok)
}
