//! `cargo xtask add-step <name>`: a service made by `new-service` becomes the last step of
//! PlaceOrder, in saga, TCC and XA mode alike. It edits the places a step lives, each by copying
//! what the template's step (stock) has there, renamed:
//!
//! - PlaceOrder's steps, `app/order/internal/data/steps.rs`: the service's branches (by their
//!   generated routes) and its request;
//! - where the coordinator reaches the service: `dtm.services.<name>` in order's shipped config,
//!   and order's settings in docker-compose and Kubernetes.

use std::path::Path;

use anyhow::{Context, Result, ensure};

use crate::{Likeness, TEMPLATE, copy_section, edit, fmt, listed_ports, ports_of};

/// Adds `name` to PlaceOrder.
pub fn run(root: &Path, name: &str) -> Result<()> {
    let list = std::fs::read_to_string(root.join("deploy/apps.txt"))?;
    let apps = listed_ports(&list)?;
    let [http, grpc] = ports_of(&apps, name).with_context(|| {
        format!("{name} is not in deploy/apps.txt: `cargo xtask new-service {name}` first")
    })?;
    let like = Likeness::new(name, &apps, [http, grpc])?;
    let copy = |text: &str| like.copy(text);

    let order = root.join("app/order");
    edit(&order.join("internal/data/steps.rs"), |t| {
        ensure!(
            !t.contains(&format!("service: \"{name}\"")),
            "{name} is a step of PlaceOrder already"
        );
        let import = format!("use api::{TEMPLATE}::v1 as {TEMPLATE}_api;\n");
        let step = block(
            t,
            &format!("        Step {{\n            service: \"{TEMPLATE}\","),
            "        },\n",
        )?;
        let end = t
            .rfind("    ]\n}")
            .context("steps.rs ends PlaceOrder's list with `    ]`")?;
        let mut out = format!("{}{}{}", &t[..end], copy(step), &t[end..]);
        let at = out
            .find(&import)
            .context("steps.rs imports the template's api")?
            + import.len();
        out.insert_str(at, &copy(&import));
        Ok(out)
    })?;
    edit(&order.join("configs/config.yaml"), |t| {
        copy_section(t, &format!("    {TEMPLATE}:"), "", copy)
    })?;
    // Deployments: every line of order's settings that names the template, copied after itself.
    edit(
        &root.join("deploy/docker-compose/docker-compose.yaml"),
        |t| Ok(copy_lines_in(t, "  order:", &copy)),
    )?;
    edit(&root.join("deploy/kubernetes/order.yaml"), |t| {
        Ok(copy_lines_in(t, "    dtm:", &copy))
    })?;
    fmt(root, "order")?;
    println!(
        "{name} is the last step of PlaceOrder (app/order/internal/data/steps.rs) and the \
         coordinator reaches it at dtm.services.{name} (:{http}, :{grpc}).\nNext: cargo test -p \
         order; the e2e scenario of docs/template.md."
    );
    Ok(())
}

/// The text from `start` through the first `end` after it.
fn block<'t>(text: &'t str, start: &str, end: &str) -> Result<&'t str> {
    let from = text
        .find(start)
        .with_context(|| format!("{start:?} not found"))?;
    let to = text[from..]
        .find(end)
        .with_context(|| format!("no {end:?} after {start:?}"))?;
    Ok(&text[from..from + to + end.len()])
}

/// `text` with each line naming the template, inside the section that starts at the line
/// `section` (up to the next line indented as little), followed by its copy.
fn copy_lines_in(text: &str, section: &str, copy: &impl Fn(&str) -> String) -> String {
    let indent = section.len() - section.trim_start().len();
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let depth = line.len() - line.trim_start().len();
        if line == section {
            inside = true;
        } else if inside && !line.trim().is_empty() && depth <= indent {
            inside = false;
        }
        out.push(line.to_owned());
        if inside && line != section && line.contains(TEMPLATE) {
            out.push(copy(line));
        }
    }
    out.join("\n") + "\n"
}
