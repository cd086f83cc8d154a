//! Configuration the kratos way: `-conf` names a YAML file or a directory of them (merged in name
//! order, later keys win), and string values may hold `${ENV:default}` placeholders, resolved
//! against the environment after parsing. A value that is exactly one placeholder takes the type
//! its text has (`${PORT:8000}` is a number), so typed fields stay typed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `data` of a service's config (kratos-layout's `Data`): where it keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConf {
    /// The database.
    pub database: DatabaseConf,
}

/// `data.database` of an app's config: which database, where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConf {
    /// `sqlite`, `postgres` or `mysql`; must agree with the scheme of `source`.
    pub driver: String,
    /// Connection URL (`sqlite://data/stock.db`, `postgres://…`, `mysql://…`).
    pub source: String,
    /// Pool size.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long start-up waits for the database to accept connections (see [`crate::startup`]);
    /// 0 tries once.
    #[serde(default = "default_connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,
}

impl DatabaseConf {
    /// `driver` at `source`, with the defaults a config file gets for the rest.
    pub fn new(driver: impl Into<String>, source: impl Into<String>) -> DatabaseConf {
        DatabaseConf {
            driver: driver.into(),
            source: source.into(),
            max_connections: default_max_connections(),
            connect_timeout: default_connect_timeout(),
        }
    }
}

fn default_max_connections() -> u32 {
    8
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or directory could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("parse {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A directory without any `.yaml`/`.yml` file.
    #[error("no .yaml or .yml file in {0}")]
    Empty(PathBuf),
    /// The merged document does not fit the schema at `key` (dotted: `dtm.services.stock`).
    #[error("config: {key}: {source}")]
    Schema {
        /// Where: the dotted path of the key.
        key: String,
        /// What is wrong there.
        source: serde_json::Error,
    },
}

/// Loads `path` (a file, or a directory of YAML files) into `T`, with placeholders resolved from
/// the process environment.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    load_with(path, |key| std::env::var(key).ok())
}

/// [`load`] with an explicit environment lookup (`|_| None`: every placeholder at its default).
pub fn load_with<T: DeserializeOwned>(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let mut merged = Value::Object(Default::default());
    for file in files(path)? {
        let text = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?;
        let doc: Value = serde_saphyr::from_str(&text).map_err(|e| ConfigError::Parse {
            path: file.clone(),
            message: e.to_string(),
        })?;
        merge(&mut merged, doc);
    }
    resolve(&mut merged, &env);
    serde_path_to_error::deserialize(merged).map_err(|e| ConfigError::Schema {
        key: e.path().to_string(),
        source: e.into_inner(),
    })
}

/// The YAML files `path` names, in the order they are merged.
fn files(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    if !path.is_dir() {
        std::fs::metadata(path).map_err(read_err)?;
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::Empty(path.to_owned()));
    }
    Ok(files)
}

/// Deep merge: objects key by key, anything else replaced.
fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Replaces `${KEY}` / `${KEY:default}` in every string.
fn resolve(v: &mut Value, env: &impl Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) if s.contains("${") => {
            let whole = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
            let text = expand(s, env);
            *v = if whole {
                typed(&text)
            } else {
                Value::String(text)
            };
        }
        Value::Array(items) => items.iter_mut().for_each(|i| resolve(i, env)),
        Value::Object(map) => map.values_mut().for_each(|i| resolve(i, env)),
        _ => {}
    }
}

fn expand(s: &str, env: &impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = closing_brace(&rest[start..]) else {
            break;
        };
        let inner = &rest[start + 2..start + len];
        let (key, default) = inner.split_once(':').unwrap_or((inner, ""));
        out.push_str(&env(key).unwrap_or_else(|| default.to_owned()));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Where the `}` closing the `${` at the start of `s` is; braces inside nest, so a default may
/// hold them (DTM's Redis prefix `${STORE_REDIS_PREFIX:{a}}`).
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The text of a whole-value placeholder as the scalar it spells (number, bool, or string).
fn typed(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(text.to_owned()),
    }
}

/// Deserializes a kratos duration (`500ms`, `1s`, `2m`, `1h`, or a bare number of seconds).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse_duration(&t).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid duration {t:?} (use e.g. 500ms, 1s, 2m)"))
        }),
    }
}

fn parse_duration(t: &str) -> Option<Duration> {
    let t = t.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Conf {
        addr: String,
        port: u16,
        on: bool,
        #[serde(deserialize_with = "duration")]
        timeout: Duration,
        nested: Nested,
    }
    #[derive(Debug, Deserialize)]
    struct Nested {
        a: String,
        b: String,
    }

    fn env(key: &str) -> Option<String> {
        (key == "SET").then(|| "from-env".to_owned())
    }

    #[test]
    fn defaults_may_hold_braces() {
        assert_eq!(expand("${UNSET:{a}}", &env), "{a}");
        assert_eq!(expand("${SET:{a}}", &env), "from-env");
        assert_eq!(expand("<${UNSET:{a}}-${SET:x}>", &env), "<{a}-from-env>");
    }

    #[test]
    fn directory_merges_in_order_and_resolves_placeholders() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("kit-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("a.yaml"),
            "addr: \"${SET:x}:${UNSET:80}\"\nport: 1\non: false\ntimeout: 1s\nnested: {a: one, b: two}\n",
        )?;
        std::fs::write(
            dir.join("b.yml"),
            "port: \"${UNSET:8000}\"\non: \"${UNSET:true}\"\ntimeout: 250ms\nnested: {b: \"${SET}\"}\n",
        )?;
        std::fs::write(dir.join("ignored.txt"), "not: yaml: at: all")?;
        let c: Conf = load_with(&dir, env)?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(c.addr, "from-env:80");
        assert_eq!(c.port, 8000);
        assert!(c.on);
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(
            (c.nested.a.as_str(), c.nested.b.as_str()),
            ("one", "from-env")
        );
        Ok(())
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let missing = load_with::<Conf>(Path::new("/nonexistent/conf.yaml"), env);
        assert!(matches!(missing, Err(ConfigError::Read { .. })));
        let file = std::env::temp_dir().join(format!("kit-conf-bad-{}.yaml", std::process::id()));
        std::fs::write(&file, "addr: [unclosed").unwrap();
        assert!(matches!(
            load_with::<Conf>(&file, env),
            Err(ConfigError::Parse { .. })
        ));
        std::fs::write(
            &file,
            "addr: a\nport: 1\non: true\ntimeout: soon\nnested: {a: x, b: z}\n",
        )
        .unwrap();
        let bad = load_with::<Conf>(&file, env);
        assert!(
            matches!(&bad, Err(ConfigError::Schema { key, .. }) if key == "timeout"),
            "{bad:?}"
        );
        // A key deeper down is named by its whole path.
        std::fs::write(
            &file,
            "addr: a\nport: 1\non: true\ntimeout: 1s\nnested: {a: x, b: [z]}\n",
        )
        .unwrap();
        let bad = load_with::<Conf>(&file, env);
        assert!(
            matches!(&bad, Err(e) if e.to_string().starts_with("config: nested.b: ")),
            "{bad:?}"
        );
        std::fs::remove_file(&file).unwrap();
    }
}
