//! Stock integration tests: the app spawned in-process on `127.0.0.1:0` with a fresh SQLite
//! database, driven over both transports (zero2prod's `tests/api` shape).

mod branches;
mod docs;
mod helpers;
mod http_surface;
