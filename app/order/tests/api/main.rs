//! Order integration tests: the app spawned in-process on `127.0.0.1:0` with a fresh SQLite
//! database, driven over both transports.

mod branches;
mod config;
mod docs;
mod helpers;
mod queries;
