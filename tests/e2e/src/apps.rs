//! The one list of the workspace's apps, `deploy/apps.txt`: the demo, chaos and the harness start
//! what it names, so a service added by `cargo xtask new-service` runs in all of them.

use std::path::{Path, PathBuf};

use dtmtest::Process;

/// One app of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppEntry {
    /// Its name: crate, binary, `app/<name>` folder.
    pub name: String,
    /// The HTTP and gRPC ports of its shipped config.
    pub ports: [u16; 2],
}

/// The list, in start order (the coordinator first).
pub fn apps() -> Vec<AppEntry> {
    parse(include_str!("../../../deploy/apps.txt"))
}

/// The branch services beyond stock and order (services made from the template): the harness
/// starts them as processes of their own binaries.
pub fn added_services() -> Vec<AppEntry> {
    apps()
        .into_iter()
        .filter(|a| !["coordinator", "stock", "order"].contains(&a.name.as_str()))
        .collect()
}

/// `name http grpc` per line; `#` starts a comment. The file is part of the source, so a bad
/// line is a bug to fix there: the panic names it.
fn parse(text: &str) -> Vec<AppEntry> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [name, http, grpc] => AppEntry {
                name: name.to_owned(),
                ports: [http, grpc].map(|p| {
                    p.parse()
                        .unwrap_or_else(|_| panic!("deploy/apps.txt: bad port in {l:?}"))
                }),
            },
            _ => panic!("deploy/apps.txt: expected `name http-port grpc-port`, got {l:?}"),
        })
        .collect()
}

/// `app/<name>` of this workspace (its shipped config is in `configs/`).
pub fn app_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../app")
        .join(name)
}

/// A service binary beside the running test or tool (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable");
    // Tests run from target/<profile>/deps, tools from target/<profile>.
    let mut dir = exe.parent().expect("its folder").to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// An added service started as a process on `127.0.0.1:0` with its shipped config, on the
/// database `source` (`driver` its dialect). A service made from the template (its config has
/// `<name>.seed`) is seeded with `seed` instead, through a config file merged after the shipped
/// one in `dir`.
pub fn start_added(
    app: &AppEntry,
    driver: &str,
    source: &str,
    seed: &[(&str, i64)],
    dir: &Path,
) -> Process {
    let exe = binary(&app.name);
    assert!(
        exe.exists(),
        "{} is not built: `cargo build --bins` first (it is in deploy/apps.txt)",
        exe.display()
    );
    let shipped = app_dir(&app.name).join("configs");
    let conf = dir.join(format!("{}-configs", app.name));
    std::fs::create_dir_all(&conf).expect("config dir");
    for file in std::fs::read_dir(&shipped).expect("the shipped configs") {
        let file = file.expect("a config file").path();
        let name = file.file_name().expect("a file name");
        std::fs::copy(&file, conf.join(name)).expect("config copy");
    }
    let values: serde_json::Value =
        kit::config::load_with(&shipped, |_| None).expect("the shipped config");
    if values[&app.name]["seed"].is_array() {
        let seed: Vec<_> = seed
            .iter()
            .map(|(sku, n)| serde_json::json!({"sku": sku, "available": n}))
            .collect();
        let seeded = serde_json::json!({ app.name.as_str(): { "seed": seed } });
        // JSON is YAML: merged after config.yaml, its keys win.
        std::fs::write(conf.join("zz-seed.yaml"), seeded.to_string()).expect("seed file");
    }
    Process::start_with(
        &exe.to_string_lossy(),
        &conf.to_string_lossy(),
        &[("DB_DRIVER", driver), ("DB_SOURCE", source)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_parses_and_starts_with_the_coordinator() {
        let apps = apps();
        assert_eq!(apps[0].name, "coordinator");
        assert!(
            apps.iter()
                .any(|a| a.name == "stock" && a.ports == [8001, 9001])
        );
        let parsed = parse("# c\n a 1 2 # x\n\nb 3 4\n");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].ports, [3, 4]);
    }
}
