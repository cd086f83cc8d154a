//! `cargo xtask new-service <name>`: copies the template (`app/stock` and its proto), renames the
//! domain in every spelling (`stock`, `Stock`, `STOCK`: types, proto package and routes, table and
//! constraint names, error reasons, config, binary), gives it the next free ports, and registers
//! it in `deploy/apps.txt` (read by the demo, chaos, the e2e harness, the Dockerfile and CI), in
//! docker-compose and in Kubernetes; then `cargo fmt` formats it.

use std::path::Path;

use anyhow::{Context, Result, ensure};

use crate::{Likeness, TEMPLATE, copy_section, edit, fmt, listed_ports};

/// Creates the service `name`.
pub fn run(root: &Path, name: &str) -> Result<()> {
    let valid = name.len() >= 2
        && name.len() <= 30
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    ensure!(
        valid,
        "{name:?}: a service name is 2 to 30 lowercase letters or digits, starting with a letter \
         (it becomes a crate, a proto package, a table and an environment variable prefix)"
    );
    let list = root.join("deploy/apps.txt");
    let apps = std::fs::read_to_string(&list).context("reading deploy/apps.txt")?;
    let ports = listed_ports(&apps)?;
    ensure!(
        !ports.iter().any(|(n, _)| n == name) && !root.join("app").join(name).exists(),
        "{name} exists already (app/{name}, deploy/apps.txt)"
    );
    let [http, grpc] = next_ports(&ports);
    let like = Likeness::new(name, &ports, [http, grpc])?;

    // The crate and its proto, renamed; the shipped config on the new ports.
    copy_tree(
        &root.join("app").join(TEMPLATE),
        &root.join("app").join(name),
        &like,
    )?;
    copy_tree(
        &root.join("api").join(TEMPLATE),
        &root.join("api").join(name),
        &like,
    )?;
    edit(
        &root.join("app").join(name).join("configs/config.yaml"),
        |t| Ok(like.copy(t)),
    )?;

    // The one list of the apps.
    edit(&list, |t| Ok(format!("{t}{name} {http} {grpc}\n")))?;

    // Kubernetes: a manifest of its own, listed in the kustomization.
    let k8s = root.join("deploy/kubernetes");
    let manifest = std::fs::read_to_string(k8s.join(format!("{TEMPLATE}.yaml")))?;
    std::fs::write(k8s.join(format!("{name}.yaml")), like.copy(&manifest))?;
    edit(&k8s.join("kustomization.yaml"), |t| {
        copy_section(t, &format!("  - {TEMPLATE}.yaml"), "", |s| like.copy(s))
    })?;

    // docker-compose: the template's service (a blank line before it) and volume, copied.
    edit(
        &root.join("deploy/docker-compose/docker-compose.yaml"),
        |t| {
            let t = copy_section(t, &format!("  {TEMPLATE}:"), "\n", |s| like.copy(s))?;
            copy_section(&t, &format!("  {TEMPLATE}-data:"), "", |s| like.copy(s))
        },
    )?;

    fmt(root, name)?;
    println!(
        "app/{name} and api/{name} created (HTTP :{http}, gRPC :{grpc}), listed in \
         deploy/apps.txt, docker-compose and Kubernetes.\nNext: cargo test -p {name}; \
         cargo xtask add-step {name} (docs/template.md)."
    );
    Ok(())
}

/// One past the highest service ports of the list (the coordinator's are DTM's own).
fn next_ports(apps: &[(String, [u16; 2])]) -> [u16; 2] {
    let services = apps.iter().filter(|(n, _)| n != "coordinator");
    let highest = |i: usize| services.clone().map(|(_, p)| p[i]).max().unwrap_or(8000);
    [highest(0) + 1, highest(1) + 1]
}

/// Copies `from` into `to` (which must not exist), renaming file names and text.
fn copy_tree(from: &Path, to: &Path, like: &Likeness) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(like.rename(&entry.file_name().to_string_lossy()));
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target, like)?;
        } else {
            let bytes = std::fs::read(entry.path())?;
            match String::from_utf8(bytes) {
                Ok(text) => std::fs::write(&target, like.rename(&text))?,
                Err(e) => std::fs::write(&target, e.into_bytes())?,
            }
        }
    }
    Ok(())
}
