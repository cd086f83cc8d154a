//! The tables the demo shows and checks, read straight from the services' SQLite files.

use std::path::Path;

use anyhow::{Context, Result};

/// The two services' tables, read straight from their SQLite files (read-only).
pub struct Tables {
    stock: sqlx::SqlitePool,
    orders: sqlx::SqlitePool,
}

impl Tables {
    pub async fn open(dir: &Path) -> Result<Tables> {
        let open = |name: &str| {
            let url = format!("sqlite://{}/data/{name}.db?mode=ro", dir.display());
            async move { sqlx::SqlitePool::connect(&url).await.context(url) }
        };
        Ok(Tables {
            stock: open("stock").await?,
            orders: open("order").await?,
        })
    }

    /// `sku available frozen` per row.
    pub async fn stock(&self) -> Result<Vec<String>> {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT sku, available, frozen FROM stock ORDER BY sku")
                .fetch_all(&self.stock)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(sku, a, f)| format!("{sku} {a} {f}"))
            .collect())
    }

    /// `(id, "sku quantity status")` per order, oldest first.
    pub async fn orders(&self) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String, i64, String)> =
            sqlx::query_as("SELECT id, sku, quantity, status FROM orders ORDER BY create_time, id")
                .fetch_all(&self.orders)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, sku, q, s)| (id, format!("{sku} {q} {s}")))
            .collect())
    }

    pub async fn print(&self) -> Result<()> {
        println!("  stock  (sku available frozen)");
        for row in self.stock().await? {
            println!("    {row}");
        }
        let orders = self.orders().await?;
        println!(
            "  orders (id sku quantity status){}",
            if orders.is_empty() { ": none" } else { "" }
        );
        for (id, row) in orders {
            println!("    {id} {row}");
        }
        Ok(())
    }
}
