//! Shell completion scripts for the three binaries, generated from their clap
//! definitions by `clap_complete`, so a new flag or subcommand completes
//! without anyone editing a script.
//!
//! Each binary carries a hidden `--completions <SHELL>` flag (bash, zsh, fish,
//! elvish, powershell) that prints the script and exits 0. The Debian package
//! runs it at build time (`packaging/build-deb.sh`) and installs the output
//! where bash-completion, zsh and fish look for vendor scripts.
//!
//! The flag is hidden: it is a packaging tool, not something to complete or to
//! list in `--help` (and so it stays out of the `--help`-driven config tests).
//! It is added to each program's clap command at run time ([`arg`]) rather
//! than declared in its argument struct, so the scripts, generated from the
//! command without it, do not complete it either.

use clap::{Arg, Command, value_parser};
use clap_complete::Shell;
use std::ffi::OsString;

/// The argument id every binary uses for the hidden flag.
pub const ARG: &str = "completions";

/// The hidden `--completions <SHELL>` flag, for programs that add it to their
/// derived command rather than to their argument struct.
pub fn arg() -> Arg {
    Arg::new(ARG)
        .long("completions")
        .value_name("SHELL")
        .value_parser(value_parser!(Shell))
        .hide(true)
        .help("Print the completion script for this shell and exit")
}

/// The completion script for `shell`, for the program `cmd` describes.
pub fn script(mut cmd: Command, shell: Shell) -> String {
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    // clap_complete writes only UTF-8 (flag names and help come from Rust strings).
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a script to standard output; the exit status (1 if it could not be
/// written, e.g. a closed pipe, where `print!` would panic).
pub fn print(script: &str) -> u8 {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(script.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// The script if `args` ask for one (`--completions <SHELL>`), else `None`
/// and the caller parses `args` as usual, with [`arg`] added to `cmd` so a bad
/// shell name gets clap's usual "invalid value" error.
///
/// `cmd` is the program's command without the flag: clap_complete completes
/// hidden flags too, and this one is not for interactive use. `args` are
/// parsed with every requirement lifted, so `dflockctl --completions bash`
/// needs no subcommand and `dflock-load --completions bash` no mode, and before
/// any setting is resolved, so a broken environment cannot stop a packaging
/// step. A command line that fails even so is left to the normal parse.
pub fn requested<I, T>(cmd: &Command, args: I) -> Option<String>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let ids: Vec<_> = cmd.get_arguments().map(|a| a.get_id().clone()).collect();
    let mut relaxed = cmd.clone().arg(arg()).subcommand_required(false);
    for id in ids {
        relaxed = relaxed.mut_arg(id, |a| a.required(false));
    }
    let matches = relaxed.try_get_matches_from(args).ok()?;
    let shell = matches.try_get_one::<Shell>(ARG).ok().flatten()?;
    Some(script(cmd.clone(), *shell))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Command {
        Command::new("demo")
            .arg(Arg::new("mode").required(true))
            .arg(Arg::new("port").long("port"))
    }

    #[test]
    fn requested_ignores_required_positionals() {
        let s = requested(&demo(), ["demo", "--completions", "bash"]).expect("a script");
        assert!(s.contains("--port"), "{s}");
        assert!(!s.contains("--completions"), "hidden flag completed: {s}");
    }

    #[test]
    fn no_flag_or_bad_shell_is_left_to_the_normal_parse() {
        assert_eq!(requested(&demo(), ["demo", "lock"]), None);
        assert_eq!(requested(&demo(), ["demo", "--completions", "tcsh"]), None);
    }
}
