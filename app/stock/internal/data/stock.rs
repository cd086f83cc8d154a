//! The stock repository: guarded counter updates behind the barrier.

use dtmcli::{BranchDb, BranchInfo, Dialect, Outcome};
use futures_util::FutureExt;
use sqlx::{AnyConnection, Row};

use crate::biz::{MAX_COUNTER, Movement, Stock, StockError, StockRepo};

/// [`StockRepo`] over the app's database.
#[derive(Debug, Clone)]
pub struct SqlStockRepo {
    db: BranchDb,
}

impl SqlStockRepo {
    /// A repository on `db`.
    pub fn new(db: BranchDb) -> Self {
        SqlStockRepo { db }
    }
}

impl StockRepo for SqlStockRepo {
    async fn apply(
        &self,
        branch: &BranchInfo,
        m: Result<Movement, StockError>,
    ) -> Result<Outcome<()>, StockError> {
        let dialect = self.db.dialect;
        self.db
            .run(branch, m, move |conn: &mut AnyConnection, m| {
                async move { move_stock(conn, dialect, &m).await }.boxed()
            })
            .await
    }

    async fn get(&self, sku: &str) -> Result<Option<Stock>, StockError> {
        let sql = "SELECT sku, available, frozen FROM stock WHERE sku = ?";
        let row = sqlx::query(&self.db.dialect.sql(sql))
            .bind(sku)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(Stock {
                sku: r.try_get("sku")?,
                available: r.try_get("available")?,
                frozen: r.try_get("frozen")?,
            }),
            None => None,
        })
    }

    async fn seed(&self, stock: &[Stock]) -> Result<(), StockError> {
        let d = self.db.dialect;
        let sql = d.insert_ignore("stock", "sku, available, frozen", "stock_pkey");
        for s in stock {
            // Read first: a prepared XA branch may hold the row until its phase two, and an
            // insert's duplicate check would wait for it — while phase two waits for this
            // process to start. A read does not wait.
            if self.get(&s.sku).await?.is_some() {
                continue;
            }
            sqlx::query(&sql)
                .bind(&s.sku)
                .bind(s.available)
                .bind(s.frozen)
                .execute(&self.db.pool)
                .await?;
        }
        Ok(())
    }
}

/// One guarded UPDATE: atomic under concurrency on every database, no read-then-write race.
/// Both counters stay within `0..=MAX_COUNTER` (movements are at most `MAX_QUANTITY`, so the
/// sums cannot overflow either).
async fn move_stock(conn: &mut AnyConnection, d: Dialect, m: &Movement) -> Result<(), StockError> {
    let sql = "UPDATE stock SET available = available + ?, frozen = frozen + ? \
               WHERE sku = ? AND available + ? BETWEEN 0 AND ? AND frozen + ? BETWEEN 0 AND ?";
    let done = sqlx::query(&d.sql(sql))
        .bind(m.available)
        .bind(m.frozen)
        .bind(&m.sku)
        .bind(m.available)
        .bind(MAX_COUNTER)
        .bind(m.frozen)
        .bind(MAX_COUNTER)
        .execute(&mut *conn)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    // Nothing changed: tell a missing SKU from a short one.
    let row = sqlx::query(&d.sql("SELECT available, frozen FROM stock WHERE sku = ?"))
        .bind(&m.sku)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Err(StockError::NotFound(m.sku.clone())),
        Some(r) => {
            let (available, frozen): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            let (available, frozen) = (available + m.available, frozen + m.frozen);
            if available > MAX_COUNTER || frozen > MAX_COUNTER {
                return Err(StockError::Overflow(m.sku.clone()));
            }
            Err(StockError::Insufficient {
                sku: m.sku.clone(),
                needed: (-available).max(-frozen),
            })
        }
    }
}
