//! A small command runner: prints what it runs, runs it in the project root and fails with a
//! message that names the step.

use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::project_root;

/// One external command, built up with [`Cmd::arg`] and [`Cmd::env`] and run in the project root.
pub struct Cmd {
    /// What this command is for, used in error messages ("clippy", "e2e: build").
    step: String,
    /// The program to run.
    program: OsString,
    /// Its arguments.
    args: Vec<OsString>,
    /// Extra environment variables.
    envs: Vec<(OsString, OsString)>,
    /// Working directory, the project root unless changed.
    dir: PathBuf,
}

impl Cmd {
    /// A command running `program`, for the step named `step`.
    pub fn new(step: impl Into<String>, program: impl Into<OsString>) -> Self {
        Self {
            step: step.into(),
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            dir: project_root(),
        }
    }

    /// A `cargo` command: the cargo that runs this xtask (`$CARGO`), else `cargo` from `PATH`.
    pub fn cargo(step: impl Into<String>) -> Self {
        Self::new(step, cargo_program())
    }

    /// Adds one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds several arguments.
    #[must_use]
    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the command.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// The `std` command, not yet started, with arguments, environment and directory set.
    pub fn to_command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(&self.dir);
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        command
    }

    /// Prints the command line (`$ ENV=value program args`) to stderr.
    pub fn echo(&self) {
        eprintln!("$ {self}");
    }

    /// Prints and runs the command with inherited stdio; fails unless it exits successfully.
    ///
    /// # Errors
    ///
    /// When the command cannot be started or exits unsuccessfully; the message names the step.
    pub fn run(&self) -> Result<()> {
        self.echo();
        let status = self
            .to_command()
            .status()
            .with_context(|| format!("step {}: could not start `{self}`", self.step))?;
        if !status.success() {
            bail!("step {}: `{self}` failed ({status})", self.step);
        }
        Ok(())
    }

    /// Runs the command quietly (not printed, output captured) and tells whether it succeeded;
    /// a command that cannot be started counts as failed. For probes such as `cargo deny --version`.
    pub fn succeeds(&self) -> bool {
        self.to_command()
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|output| output.status.success())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        for (key, value) in &self.envs {
            let _ = write!(line, "{}={} ", key.to_string_lossy(), quote(&value.to_string_lossy()));
        }
        let program = PathBuf::from(&self.program);
        // `$CARGO` is an absolute path into the toolchain; show it as the plain `cargo` it is.
        let shown = if self.program == cargo_program() {
            "cargo".to_owned()
        } else {
            program.display().to_string()
        };
        line.push_str(&shown);
        for arg in &self.args {
            line.push(' ');
            line.push_str(&quote(&arg.to_string_lossy()));
        }
        f.write_str(&line)
    }
}

/// The cargo binary to use.
fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Quotes a word for display the way a shell would need it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_when_needed() {
        let cmd = Cmd::new("doc", "rustdoc")
            .env("RUSTDOCFLAGS", "-D warnings")
            .args(["--flag", "it's"]);
        assert_eq!(cmd.to_string(), r"RUSTDOCFLAGS='-D warnings' rustdoc --flag 'it'\''s'");
    }
}
