//! kratos binaries take Go-style flags (`-conf ../../configs`); clap wants `--conf`. This turns
//! the one into the other so that both spellings work.

use std::ffi::OsString;

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
