//! What every binary of the workspace does before its wiring ([`start`]): its flags, `--probe`,
//! logging, the config. kratos binaries take Go-style flags (`-conf ../../configs`); clap wants
//! `--conf`, so both spellings are accepted ([`normalize`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use serde::de::DeserializeOwned;

use crate::config::ConfigError;
use crate::probe::ProbeError;

/// Names a binary for its `--help` and `--version`, and where its config is by default.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The binary's name.
    pub name: &'static str,
    /// Its version (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// The config file or directory when `-conf` is not given.
    pub default_conf: &'static str,
}

/// The flags every binary takes.
#[derive(Debug, clap::Parser)]
struct Flags {
    /// Config file or directory.
    #[arg(long)]
    conf: PathBuf,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Exit 0 if this URL (a running app's /healthz) answers 200, else 1: the container
    /// healthcheck, as the image has no curl.
    #[arg(long, value_name = "URL")]
    probe: Option<String>,
}

/// Why a binary stopped before its wiring.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `--probe`: the app did not answer 200.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The config could not be loaded.
    #[error("loading {path}")]
    Config {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong reading or parsing it.
        source: ConfigError,
    },
}

/// Parses the process's flags (exiting on `--help`, `--version` or a bad flag, as clap does),
/// answers `--probe` (`Ok(None)`: the binary exits 0), starts logging, raises the open-file
/// limit ([`crate::startup::raise_open_files`]) and loads the config.
pub async fn start<C: DeserializeOwned>(binary: Binary) -> Result<Option<C>, StartError> {
    let command = Flags::command()
        .name(binary.name)
        .version(binary.version)
        .about(binary.about)
        .mut_arg("conf", |a| {
            a.required(false).default_value(binary.default_conf)
        });
    let matches = command.get_matches_from(args());
    let flags = Flags::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(url) = &flags.probe {
        crate::probe::probe(url, Duration::from_secs(3)).await?;
        return Ok(None);
    }
    crate::log::init(flags.log_json, binary.name);
    match crate::startup::raise_open_files() {
        Ok(limit) => tracing::debug!(limit, "open files"),
        Err(e) => tracing::warn!(error = %e, "raising the open-file limit failed"),
    }
    crate::config::load(&flags.conf)
        .map(Some)
        .map_err(|source| StartError::Config {
            path: flags.conf,
            source,
        })
}

/// The process arguments with single-dash long flags (`-conf`) rewritten as `--conf`.
pub fn args() -> Vec<OsString> {
    normalize(std::env::args_os())
}

/// Rewrites `-name` (more than one letter, not a number) as `--name`.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some(s)
                if s.starts_with('-')
                    && !s.starts_with("--")
                    && s.len() > 2
                    && s[1..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic()) =>
            {
                OsString::from(format!("-{s}"))
            }
            _ => a,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        let out =
            normalize(["stock", "-conf", "a.yaml", "--log-json", "-h", "-5"].map(OsString::from));
        assert_eq!(
            out,
            ["stock", "--conf", "a.yaml", "--log-json", "-h", "-5"].map(OsString::from)
        );
    }
}
