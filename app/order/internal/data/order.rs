//! The order repository: inserts and guarded status changes behind the barrier.

use dtmcli::{BranchDb, BranchInfo, Dialect, Outcome};
use futures_util::FutureExt;
use kit::time::UnixMs;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::biz::{Change, Order, OrderError, OrderRepo, OrderStatus};

/// [`OrderRepo`] over the app's database.
#[derive(Debug, Clone)]
pub struct SqlOrderRepo {
    db: BranchDb,
}

impl SqlOrderRepo {
    /// A repository on `db`.
    pub fn new(db: BranchDb) -> Self {
        SqlOrderRepo { db }
    }
}

const COLUMNS: &str = "id, user_id, sku, quantity, status, create_time, update_time";

impl OrderRepo for SqlOrderRepo {
    async fn apply(
        &self,
        branch: &BranchInfo,
        change: Result<Change, OrderError>,
    ) -> Result<Outcome<()>, OrderError> {
        let dialect = self.db.dialect;
        self.db
            .run(branch, change, move |conn: &mut AnyConnection, change| {
                async move { apply(conn, dialect, &change).await }.boxed()
            })
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<Order>, OrderError> {
        let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = ?");
        let row = sqlx::query(&self.db.dialect.sql(&sql))
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.as_ref().map(order_of).transpose()
    }

    async fn list(
        &self,
        user_id: Option<i64>,
        limit: u32,
        after: Option<(UnixMs, String)>,
    ) -> Result<Vec<Order>, OrderError> {
        // Keyset pagination on (create_time, id), newest first.
        let mut sql = format!("SELECT {COLUMNS} FROM orders WHERE 1 = 1");
        if user_id.is_some() {
            sql.push_str(" AND user_id = ?");
        }
        if after.is_some() {
            sql.push_str(" AND (create_time < ? OR (create_time = ? AND id < ?))");
        }
        sql.push_str(" ORDER BY create_time DESC, id DESC LIMIT ?");
        let sql = self.db.dialect.sql(&sql);
        let mut q = sqlx::query(&sql);
        if let Some(u) = user_id {
            q = q.bind(u);
        }
        if let Some((t, id)) = after {
            q = q.bind(t.0).bind(t.0).bind(id);
        }
        let rows = q.bind(i64::from(limit)).fetch_all(&self.db.pool).await?;
        rows.iter().map(order_of).collect()
    }
}

/// The business write of a branch, in the barrier's transaction.
async fn apply(conn: &mut AnyConnection, d: Dialect, change: &Change) -> Result<(), OrderError> {
    match change {
        Change::Insert(o) => {
            let sql = format!("INSERT INTO orders ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)");
            let res = sqlx::query(&d.sql(&sql))
                .bind(&o.id)
                .bind(o.user_id)
                .bind(&o.sku)
                .bind(o.quantity)
                .bind(o.status.as_str())
                .bind(o.create_time.0)
                .bind(o.update_time.0)
                .execute(&mut *conn)
                .await;
            match res {
                Ok(_) => Ok(()),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    Err(OrderError::Exists(o.id.clone()))
                }
                Err(e) => Err(e.into()),
            }
        }
        Change::Transition { id, from, to } => {
            let sql = "UPDATE orders SET status = ?, update_time = ? WHERE id = ? AND status = ?";
            let done = sqlx::query(&d.sql(sql))
                .bind(to.as_str())
                .bind(UnixMs::now().0)
                .bind(id)
                .bind(from.as_str())
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 1 {
                return Ok(());
            }
            let status: Option<String> =
                sqlx::query_scalar(&d.sql("SELECT status FROM orders WHERE id = ?"))
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            match status.as_deref().and_then(OrderStatus::parse) {
                None => Err(OrderError::NotFound(id.clone())),
                Some(s) => Err(OrderError::StatusConflict {
                    id: id.clone(),
                    status: s.as_str(),
                    expected: from.as_str(),
                }),
            }
        }
    }
}

fn order_of(r: &AnyRow) -> Result<Order, OrderError> {
    let status: String = r.try_get("status")?;
    Ok(Order {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        sku: r.try_get("sku")?,
        quantity: r.try_get("quantity")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| OrderError::Storage(format!("unknown status {status}").into()))?,
        create_time: UnixMs(r.try_get("create_time")?),
        update_time: UnixMs(r.try_get("update_time")?),
    })
}
