//! What the coordinator needs from storage (docs/dtm-protocol.md, Storage), shaped so that SQL
//! stores and Redis can both provide it: every status change is a compare-and-set, the poller's
//! lease is `owner + next_cron_time`, and times are Unix milliseconds computed by the coordinator.

use std::time::Duration;

use kit::time::UnixMs;

use crate::biz::{Branch, BranchStatus, Global, Op, Status};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A branch with this (gid, branch_id, op) exists already.
    #[error("duplicate branch")]
    Duplicate,
    /// The backend failed; the caller may retry. The cause is kept: the database's or
    /// Redis's own error, or a message of ours for a row that makes no sense.
    #[error("store: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// The result of [`TransStore::create`].
#[derive(Debug)]
pub enum Created {
    /// Stored, with its branches.
    Inserted,
    /// A transaction with this gid exists already (nothing was written).
    Exists(Box<Global>),
}

/// What [`TransStore::lease_due`] found.
#[derive(Debug)]
pub enum Leased {
    /// This transaction, now leased to the caller (boxed: a row is large, the others empty).
    Taken(Box<Global>),
    /// One was due, but another instance leased it first: more may be due, look again at once.
    Raced,
    /// Nothing is due.
    NothingDue,
}

impl Leased {
    /// The leased transaction, if one was taken.
    pub fn taken(self) -> Option<Global> {
        match self {
            Leased::Taken(g) => Some(*g),
            Leased::Raced | Leased::NothingDue => None,
        }
    }
}

/// A status change, applied only if the transaction is still in the expected status.
#[derive(Debug, Clone)]
pub struct StatusChange<'a> {
    /// The status it must be in.
    pub from: Status,
    /// The status it gets.
    pub to: Status,
    /// Sets `rollback_reason` when given.
    pub rollback_reason: Option<&'a str>,
    /// Sets `result` when given (a workflow's submit).
    pub result: Option<&'a str>,
    /// Now (update time; finish or rollback time as `to` says).
    pub now: UnixMs,
}

impl StatusChange<'_> {
    /// Applies the change to a copy in memory, as the stores apply it to the row: the
    /// reason only when given, the finish time on a final status, the rollback time once.
    pub fn apply(&self, g: &mut Global) {
        g.status = self.to;
        g.update_time = self.now;
        if let Some(reason) = self.rollback_reason {
            g.rollback_reason = reason.to_owned();
        }
        if let Some(result) = self.result {
            g.result = result.to_owned();
        }
        if self.to.is_final() {
            g.finish_time = Some(self.now);
        }
        if matches!(self.to, Status::Aborting | Status::Failed) && g.rollback_time.is_none() {
            g.rollback_time = Some(self.now);
        }
    }
}

/// A round's progress, written as one: the results of a wave of branch calls and, when they
/// end the transaction's current phase, the status change that follows.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// The transaction.
    pub gid: &'a str,
    /// The status it must still be in; otherwise nothing is written.
    pub global_status: Status,
    /// `(branch_id, op, status)` of each branch that answered.
    pub branches: Vec<(&'a str, Op, BranchStatus)>,
    /// The status change that follows (its `from` is `global_status`).
    pub then: Option<StatusChange<'a>>,
    /// Now.
    pub now: UnixMs,
}

/// A msg topic: `topic://<name>` in a msg's action stands for its subscribers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topic {
    /// The topic's name.
    pub name: String,
    /// Who receives it, in subscription order.
    pub subscribers: Vec<Subscriber>,
    /// The stored version (0: not stored yet); every change increments it.
    pub version: i64,
}

/// A subscriber of a topic (DTM's JSON: `{"url","remark"}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Subscriber {
    /// The branch URL each message to the topic calls.
    pub url: String,
    /// Free text.
    #[serde(default)]
    pub remark: String,
}

/// What [`TransStore::backlog`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// How many unfinished transactions each unfinished status has (absent: none).
    pub unfinished: Vec<(Status, u64)>,
    /// The earliest time one of them is due.
    pub earliest_due: Option<UnixMs>,
}

/// Filters and cursor of the `all` query.
#[derive(Debug, Clone, Default)]
pub struct ScanQuery {
    /// Only this gid.
    pub gid: Option<String>,
    /// Only gids starting with this.
    pub gid_prefix: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this type.
    pub trans_type: Option<String>,
    /// Created at or after.
    pub create_time_start: Option<UnixMs>,
    /// Created at or before.
    pub create_time_end: Option<UnixMs>,
    /// Opaque cursor from the previous page (`None`: first page).
    pub position: Option<String>,
    /// Page size.
    pub limit: u32,
}

/// One page of transactions, newest first.
#[derive(Debug, Clone)]
pub struct ScanPage {
    /// The transactions.
    pub transactions: Vec<Global>,
    /// Cursor of the next page; empty when this page is the last.
    pub next_position: String,
}

impl ScanPage {
    /// A page of at most `limit` transactions, newest first: a full page's cursor is its last
    /// id (the next page starts below it), a short page is the last.
    pub fn new(transactions: Vec<Global>, limit: u32) -> ScanPage {
        let next_position = match transactions.last() {
            Some(last) if transactions.len() == limit as usize => last.id.to_string(),
            _ => String::new(),
        };
        ScanPage {
            transactions,
            next_position,
        }
    }
}

/// Storage of global transactions and their branches.
#[async_trait::async_trait]
pub trait TransStore: Send + Sync + 'static {
    /// Writes `global` and its `branches` atomically, unless its gid exists.
    async fn create(&self, global: &Global, branches: &[Branch]) -> Result<Created, StoreError>;

    /// Reads one transaction.
    async fn find(&self, gid: &str) -> Result<Option<Global>, StoreError>;

    /// Its branches, in insertion order.
    async fn branches(&self, gid: &str) -> Result<Vec<Branch>, StoreError>;

    /// Compare-and-set of the status; `false` if it was not in `change.from`.
    async fn change_status(&self, gid: &str, change: &StatusChange<'_>)
    -> Result<bool, StoreError>;

    /// Adds branches while the transaction is in `expected` (registerBranch); `false` if it is
    /// not; [`StoreError::Duplicate`] if one of them exists.
    async fn add_branches(
        &self,
        gid: &str,
        expected: Status,
        branches: &[Branch],
    ) -> Result<bool, StoreError>;

    /// Writes `p` while the transaction is in `p.global_status`, all of it or nothing; `false`
    /// if it is not in that status (someone else changed it: stop this round). The SQL stores
    /// write it in one transaction, Redis in one script.
    async fn record(&self, p: &Progress<'_>) -> Result<bool, StoreError>;

    /// Leases one unfinished transaction whose `next_cron_time <= now` to `owner` until
    /// `lease_until`, the earliest due first (or one of the earliest few, so that instances
    /// leasing at once choose different ones). Each due transaction goes to exactly one
    /// instance; a store that skips what another is leasing (PostgreSQL: `SKIP LOCKED`; Redis:
    /// one script) does not answer `Raced`.
    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError>;

    /// Sets when the transaction is due next (renewing a lease, or scheduling the next visit)
    /// and, if given, its retry interval, while `owner` holds it and it is unfinished; `false`
    /// otherwise.
    async fn schedule(
        &self,
        gid: &str,
        owner: &str,
        next_cron_time: UnixMs,
        next_cron_interval: Option<Duration>,
        now: UnixMs,
    ) -> Result<bool, StoreError>;

    /// Gives the lease of an unfinished transaction to `owner` until `lease_until`, whoever held
    /// it (a client's submit or abort moves it on here and now); `false` if it is finished.
    async fn take_lease(
        &self,
        gid: &str,
        owner: &str,
        lease_until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError>;

    /// A page of transactions, newest first.
    async fn scan(&self, query: &ScanQuery) -> Result<ScanPage, StoreError>;

    /// Unfinished transactions due after `after` become due `now` (at most `limit` of them);
    /// returns how many, and whether more remain.
    async fn reset_cron_time(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError>;

    /// One unfinished transaction becomes due `now`; `false` if none such.
    async fn reset_next_cron_time(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError>;

    /// A msg topic and its subscribers, or `None`.
    async fn topic(&self, name: &str) -> Result<Option<Topic>, StoreError>;

    /// Writes `topic` if its stored version is still `topic.version` (0: it must not exist yet),
    /// incrementing the version; `false` if someone changed it meanwhile.
    async fn put_topic(&self, topic: &Topic) -> Result<bool, StoreError>;

    /// Deletes a topic; `false` if there was none.
    async fn delete_topic(&self, name: &str) -> Result<bool, StoreError>;

    /// The backlog: unfinished transactions by status, and the earliest `next_cron_time` among
    /// them (`None` when there are none). Read at each metrics scrape.
    async fn backlog(&self) -> Result<Backlog, StoreError>;

    /// Proves the store can write now, with a small write committed and undone: the health
    /// check. A store that still answers reads but cannot commit (full disk, read-only or
    /// deleted file) must fail here.
    async fn probe(&self) -> Result<(), StoreError>;

    /// A clean stop, once nothing else uses the store: leaves it self-contained (SQLite folds
    /// its write-ahead log into the database file, so that the file alone is a copy).
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
