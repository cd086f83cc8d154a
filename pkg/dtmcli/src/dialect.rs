//! SQLite, PostgreSQL and MySQL differ in the few places this workspace cares about: parameter
//! placeholders, "insert unless present", and where the barrier table lives.

use std::borrow::Cow;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor};

/// The database behind an `sqlx::Any` connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the embedded default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Dialect {
    /// The dialect of a connection, from sqlx's backend name.
    pub fn from_backend(name: &str) -> Option<Dialect> {
        match name {
            "SQLite" => Some(Dialect::Sqlite),
            "PostgreSQL" => Some(Dialect::Postgres),
            "MySQL" => Some(Dialect::MySql),
            _ => None,
        }
    }

    /// The dialect a config's `driver` names (`sqlite`, `postgres`/`postgresql`,
    /// `mysql`/`mariadb`).
    pub fn from_driver(driver: &str) -> Option<Dialect> {
        match driver {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            _ => None,
        }
    }

    /// The dialect of a connection URL: its scheme is a driver name (`postgres://…`).
    pub fn from_url(url: &str) -> Option<Dialect> {
        Dialect::from_driver(url.split(':').next()?)
    }

    /// The config `driver` name of this dialect.
    pub fn driver(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        }
    }

    /// Rewrites `?` placeholders as `$1, $2, …` for PostgreSQL; the others take `?` as written.
    /// (Our statements have no `?` inside string literals.)
    pub fn sql(self, sql: &str) -> Cow<'_, str> {
        if self != Dialect::Postgres || !sql.contains('?') {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    }

    /// `INSERT … ` that does nothing when a unique key already holds the row; `rows_affected` then
    /// tells whether it inserted. `conflict` names the unique constraint (PostgreSQL needs it).
    pub fn insert_ignore(self, table: &str, columns: &str, conflict: &str) -> String {
        let marks = vec!["?"; columns.split(',').count()].join(", ");
        let sql = match self {
            Dialect::Sqlite => {
                format!("INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})")
            }
            Dialect::MySql => format!("INSERT IGNORE INTO {table} ({columns}) VALUES ({marks})"),
            Dialect::Postgres => format!(
                "INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT ON CONSTRAINT {conflict} DO NOTHING"
            ),
        };
        self.sql(&sql).into_owned()
    }

    /// Whether `e`, met while connecting, says the server is not reachable yet (down, starting,
    /// its name not resolvable yet): worth waiting for at start-up. A SQLite file is never waited
    /// for: what fails there (permissions, a full disk) does not pass by itself.
    pub fn unreachable(self, e: &sqlx::Error) -> bool {
        match e {
            _ if self == Dialect::Sqlite => false,
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
            // PostgreSQL's "the database system is starting up".
            sqlx::Error::Database(db) => db.code().as_deref() == Some("57P03"),
            _ => false,
        }
    }

    /// Where the barrier table is: DTM's `dtm_barrier.barrier` on PostgreSQL (schema) and MySQL
    /// (database); SQLite has no schemas, so a `dtm_barrier` table in the business database.
    pub fn barrier_table(self) -> &'static str {
        match self {
            Dialect::Sqlite => "dtm_barrier",
            Dialect::Postgres | Dialect::MySql => "dtm_barrier.barrier",
        }
    }
}

/// Why [`open`] could not give a ready database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// `driver` and the URL scheme of `source` disagree, or name no supported database.
    #[error(
        "data.database: driver {driver:?} does not match source {url:?} (sqlite, postgres or mysql)"
    )]
    Driver {
        /// The configured driver.
        driver: String,
        /// The configured URL.
        url: String,
    },
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migrate: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Opens an app's database (`data.database`), waiting up to `connect_timeout` for a server that
/// is not reachable yet, and runs the barrier's migration, then the app's
/// own (`migrations(dialect)`, usually `sqlx::migrate!` of one directory per dialect).
pub async fn open(
    conf: &kit::DatabaseConf,
    migrations: impl FnOnce(Dialect) -> sqlx::migrate::Migrator,
) -> Result<(AnyPool, Dialect), OpenError> {
    let (driver, source) = (conf.driver.as_str(), conf.source.as_str());
    let dialect = Dialect::from_url(source)
        .filter(|d| Dialect::from_driver(driver) == Some(*d))
        .ok_or_else(|| OpenError::Driver {
            driver: driver.to_owned(),
            url: source.to_owned(),
        })?;
    let pool = connect_waiting(source, conf.max_connections, conf.connect_timeout).await?;
    crate::barrier::migrate(&pool).await?;
    let mut migrator = migrations(dialect);
    // The barrier's migration shares the `_sqlx_migrations` table.
    migrator.set_ignore_missing(true).run(&pool).await?;
    Ok((pool, dialect))
}

/// [`connect`], waiting up to `patience` for a server that is not reachable yet
/// ([`Dialect::unreachable`]; a SQLite file is tried once).
pub async fn connect_waiting(
    source: &str,
    max_connections: u32,
    patience: Duration,
) -> Result<AnyPool, sqlx::Error> {
    let dialect = Dialect::from_url(source);
    let unreachable = |e: &sqlx::Error| dialect.is_some_and(|d| d.unreachable(e));
    kit::startup::wait_for("database", patience, unreachable, || {
        connect(source, max_connections)
    })
    .await
}

/// Opens a pool on any of the three databases. For SQLite the file (and its directory) is
/// created if missing and put in WAL mode, so readers do not wait for the writer.
pub async fn connect(source: &str, max_connections: u32) -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::from_url(source).ok_or_else(|| {
        sqlx::Error::Configuration(format!("unsupported database URL {source:?}").into())
    })?;
    let mut url = source.to_owned();
    if let Some(path) = sqlite_path(source) {
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
    }
    // One connection first: it puts the file in WAL mode (a setting the file keeps), and a file
    // that cannot be opened or written (read-only, not a database) fails now with SQLite's own
    // error, not after the pool's retries with "pool timed out".
    if dialect == Dialect::Sqlite && !url.contains("mode=ro") {
        let mut first = sqlx::AnyConnection::connect(&url).await?;
        first.execute("PRAGMA journal_mode = WAL").await?;
        first.execute("BEGIN IMMEDIATE").await?;
        first.execute("ROLLBACK").await?;
        first.close().await?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if dialect == Dialect::Sqlite {
                    // Durable at each checkpoint, not each commit: WAL's usual trade.
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(pool)
}

/// The file of a SQLite URL (`sqlite://data/dtm.db?mode=rwc` → `data/dtm.db`); `None` for other
/// URLs and in-memory databases.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let q = "UPDATE t SET a = ? WHERE b = ?";
        assert_eq!(Dialect::Postgres.sql(q), "UPDATE t SET a = $1 WHERE b = $2");
        assert_eq!(Dialect::MySql.sql(q), q);
        assert_eq!(Dialect::Sqlite.sql(q), q);
    }

    #[test]
    fn insert_ignore_per_dialect() {
        assert_eq!(
            Dialect::Postgres.insert_ignore("t", "a, b", "uniq"),
            "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT ON CONSTRAINT uniq DO NOTHING"
        );
        assert_eq!(
            Dialect::MySql.insert_ignore("t", "a", "u"),
            "INSERT IGNORE INTO t (a) VALUES (?)"
        );
        assert_eq!(Dialect::from_url("mariadb://x"), Some(Dialect::MySql));
        assert_eq!(Dialect::from_url("redis://x"), None);
    }

    #[test]
    fn driver_names_round_trip() {
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            assert_eq!(Dialect::from_driver(d.driver()), Some(d));
        }
        assert_eq!(Dialect::from_driver("postgresql"), Some(Dialect::Postgres));
        assert_eq!(Dialect::from_driver("redis"), None);
    }
}
