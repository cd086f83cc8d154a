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

/// The workspace root: the parent of this crate's folder. Read at run time (`cargo run` sets
/// it), so that a binary built for another clone sharing the build directory edits this one.
fn root() -> Result<PathBuf> {
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    Ok(here.parent().context("xtask/ has a parent")?.to_owned())
}

/// The three spellings of a name in code: `payment`, `Payment`, `PAYMENT`.
struct Names {
    lower: String,
    pascal: String,
    upper: String,
}

impl Names {
    fn of(lower: &str) -> Names {
        let mut pascal = lower.to_owned();
        pascal[..1].make_ascii_uppercase();
        Names {
            lower: lower.to_owned(),
            pascal,
            upper: lower.to_ascii_uppercase(),
        }
    }

    /// `text` with the template's name replaced by this one, in every spelling.
    fn rename(&self, text: &str) -> String {
        let t = Names::of(TEMPLATE);
        text.replace(&t.lower, &self.lower)
            .replace(&t.pascal, &self.pascal)
            .replace(&t.upper, &self.upper)
    }
}

/// How the template's text becomes a service's: its name in every spelling and its ports.
pub(crate) struct Likeness {
    names: Names,
    from: [u16; 2],
    to: [u16; 2],
}

impl Likeness {
    /// For service `name` on `ports`, the template's ports read from the list `apps`.
    pub(crate) fn new(name: &str, apps: &[(String, [u16; 2])], ports: [u16; 2]) -> Result<Self> {
        let from = ports_of(apps, TEMPLATE).context("the template is in deploy/apps.txt")?;
        Ok(Likeness {
            names: Names::of(name),
            from,
            to: ports,
        })
    }

    /// `text` with the template's name replaced (file contents and names of the crate).
    pub(crate) fn rename(&self, text: &str) -> String {
        self.names.rename(text)
    }

    /// `text` with the template's name and ports replaced (configs, deployments, steps).
    pub(crate) fn copy(&self, text: &str) -> String {
        let mut out = self.rename(text);
        for (from, to) in self.from.iter().zip(self.to) {
            out = out.replace(&from.to_string(), &to.to_string());
        }
        out
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

/// The HTTP and gRPC ports of `name` in the list `apps`.
pub(crate) fn ports_of(apps: &[(String, [u16; 2])], name: &str) -> Option<[u16; 2]> {
    apps.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
}

/// `text` with the section that starts at the line `header` (that line and the more-indented
/// lines after it) followed by `between` and its copy through `copy`.
pub(crate) fn copy_section(
    text: &str,
    header: &str,
    between: &str,
    copy: impl Fn(&str) -> String,
) -> Result<String> {
    let from = format!("\n{text}")
        .find(&format!("\n{header}\n"))
        .with_context(|| format!("no line {header:?}"))?;
    let indent = header.len() - header.trim_start().len();
    let mut to = from + header.len() + 1;
    for line in text[to..].split_inclusive('\n') {
        if line.len() - line.trim_start().len() <= indent {
            break;
        }
        to += line.len();
    }
    let section = &text[from..to];
    Ok(format!(
        "{}{between}{}{}",
        &text[..to],
        copy(section),
        &text[to..]
    ))
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
