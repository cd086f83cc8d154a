//! The repository's own tasks (the xtask pattern; kratos' `kratos new` is the model):
//!
//! - `cargo xtask new-service <name>`: a new service from the template, `app/stock`
//!   ([`new_service`]);
//! - `cargo xtask add-step <name>`: that service as the last step of PlaceOrder ([`add_step`]).
//!
//! docs/template.md walks through both.

mod add_step;
mod new_service;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// The crate every new service is copied from.
pub(crate) const TEMPLATE: &str = "stock";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["new-service", name] => new_service::run(&root()?, name),
        ["add-step", name] => add_step::run(&root()?, name),
        _ => bail!(
            "usage: cargo xtask new-service <name>   a service from the template (payment, wallet…)\n       \
             cargo xtask add-step <name>      that service as the last step of PlaceOrder"
        ),
    }
}

/// The workspace root: the parent of this crate's folder.
fn root() -> Result<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(here.parent().context("xtask/ has a parent")?.to_owned())
}

/// The three spellings of a name in code: `payment`, `Payment`, `PAYMENT`.
pub(crate) struct Names {
    pub(crate) lower: String,
    pub(crate) pascal: String,
    pub(crate) upper: String,
}

impl Names {
    pub(crate) fn of(lower: &str) -> Names {
        let mut pascal = lower.to_owned();
        pascal[..1].make_ascii_uppercase();
        Names {
            lower: lower.to_owned(),
            pascal,
            upper: lower.to_ascii_uppercase(),
        }
    }

    /// `text` with the template's name replaced by this one, in every spelling.
    pub(crate) fn rename(&self, text: &str) -> String {
        let t = Names::of(TEMPLATE);
        text.replace(&t.lower, &self.lower)
            .replace(&t.pascal, &self.pascal)
            .replace(&t.upper, &self.upper)
    }
}

/// `(name, [http, grpc])` of every line of `deploy/apps.txt`.
pub(crate) fn listed_ports(apps: &str) -> Result<Vec<(String, [u16; 2])>> {
    apps.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [n, h, g] => Ok((n.to_owned(), [h.parse()?, g.parse()?])),
            _ => bail!("deploy/apps.txt: expected `name http-port grpc-port`, got {l:?}"),
        })
        .collect()
}

/// Rewrites a file through `f`.
pub(crate) fn edit(path: &Path, f: impl FnOnce(&str) -> Result<String>) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    std::fs::write(path, f(&text)?).with_context(|| format!("writing {}", path.display()))
}

/// `cargo fmt -p <package>`: the renamed code, formatted.
pub(crate) fn fmt(root: &Path, package: &str) -> Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["fmt", "-p", package])
        .current_dir(root)
        .status()
        .context("running cargo fmt")?;
    ensure!(status.success(), "cargo fmt -p {package} failed");
    Ok(())
}
