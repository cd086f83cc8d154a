//! [`MemoryStore`]: the [`TransStore`] contract in a `HashMap`, for tests of the state machines
//! that need neither a database nor a network and run in milliseconds. It passes the same
//! conformance suite as the real stores (tests/store.rs), so what a test learns with it holds
//! for them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kit::time::UnixMs;

use coordinator::biz::{
    Backlog, Branch, Created, Global, Leased, Progress, ScanPage, ScanQuery, Status, StatusChange,
    StoreError, Topic, TransStore,
};

/// Transactions and their branches in memory; every method is one critical section, so each
/// is atomic as the real stores' writes are.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// When set, `lease_due` panics: a poller with a bug in it.
    pub lease_panics: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Inner {
    next_id: i64,
    trans: HashMap<String, (Global, Vec<Branch>)>,
    topics: HashMap<String, Topic>,
}

impl MemoryStore {
    /// Changes a stored transaction behind the use case's back (a corrupt row, a hand edit).
    pub fn edit(&self, gid: &str, f: impl FnOnce(&mut Global)) {
        self.with(|s| s.trans.get_mut(gid).map(|(g, _)| f(g)).expect("stored"));
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().expect("memory store"))
    }
}

fn unfinished(g: &Global) -> bool {
    matches!(
        g.status,
        Status::Prepared | Status::Submitted | Status::Aborting
    )
}

#[async_trait::async_trait]
impl TransStore for MemoryStore {
    async fn create(&self, global: &Global, branches: &[Branch]) -> Result<Created, StoreError> {
        Ok(self.with(|s| {
            if let Some((g, _)) = s.trans.get(&global.gid) {
                return Created::Exists(Box::new(g.clone()));
            }
            s.next_id += 1;
            let mut g = global.clone();
            g.id = s.next_id;
            let rows = branches
                .iter()
                .enumerate()
                .map(|(i, b)| Branch {
                    id: i as i64 + 1,
                    ..b.clone()
                })
                .collect();
            s.trans.insert(g.gid.clone(), (g, rows));
            Created::Inserted
        }))
    }

    async fn find(&self, gid: &str) -> Result<Option<Global>, StoreError> {
        Ok(self.with(|s| s.trans.get(gid).map(|(g, _)| g.clone())))
    }

    async fn branches(&self, gid: &str) -> Result<Vec<Branch>, StoreError> {
        Ok(self.with(|s| s.trans.get(gid).map(|(_, b)| b.clone()).unwrap_or_default()))
    }

    async fn change_status(&self, gid: &str, c: &StatusChange<'_>) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.trans.get_mut(gid) {
            Some((g, _)) if g.status == c.from => {
                c.apply(g);
                true
            }
            _ => false,
        }))
    }

    async fn add_branches(
        &self,
        gid: &str,
        expected: Status,
        branches: &[Branch],
    ) -> Result<bool, StoreError> {
        self.with(|s| {
            let Some((_, rows)) = s.trans.get_mut(gid).filter(|(g, _)| g.status == expected) else {
                return Ok(false);
            };
            for (i, b) in branches.iter().enumerate() {
                let taken = |r: &Branch| r.branch_id == b.branch_id && r.op == b.op;
                if rows.iter().any(taken) || branches[..i].iter().any(taken) {
                    return Err(StoreError::Duplicate);
                }
            }
            let first = rows.len() as i64 + 1;
            rows.extend(branches.iter().enumerate().map(|(i, b)| Branch {
                id: first + i as i64,
                ..b.clone()
            }));
            Ok(true)
        })
    }

    async fn record(&self, p: &Progress<'_>) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let Some((g, rows)) = s
                .trans
                .get_mut(p.gid)
                .filter(|(g, _)| g.status == p.global_status)
            else {
                return false;
            };
            for &(branch_id, op, status) in &p.branches {
                if let Some(b) = rows
                    .iter_mut()
                    .find(|b| b.branch_id == branch_id && b.op == op)
                {
                    b.answered(status, p.now);
                }
            }
            if let Some(c) = &p.then {
                c.apply(g);
            }
            true
        }))
    }

    async fn lease_due(
        &self,
        now: UnixMs,
        lease_until: UnixMs,
        owner: &str,
    ) -> Result<Leased, StoreError> {
        assert!(
            !self.lease_panics.load(std::sync::atomic::Ordering::SeqCst),
            "lease_due panics, as told"
        );
        Ok(self
            .with(|s| {
                let (g, _) = s
                    .trans
                    .values_mut()
                    .filter(|(g, _)| unfinished(g) && g.next_cron_time <= now)
                    .min_by_key(|(g, _)| (g.next_cron_time, g.id))?;
                g.owner = owner.to_owned();
                g.next_cron_time = lease_until;
                g.update_time = now;
                Some(g.clone())
            })
            .map_or(Leased::NothingDue, |g| Leased::Taken(Box::new(g))))
    }

    async fn schedule(
        &self,
        gid: &str,
        owner: &str,
        next_cron_time: UnixMs,
        next_cron_interval: Option<Duration>,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.trans.get_mut(gid) {
            Some((g, _)) if unfinished(g) && g.owner == owner => {
                g.next_cron_time = next_cron_time;
                if let Some(interval) = next_cron_interval {
                    g.next_cron_interval = interval;
                }
                g.update_time = now;
                true
            }
            _ => false,
        }))
    }

    async fn take_lease(
        &self,
        gid: &str,
        owner: &str,
        lease_until: UnixMs,
        now: UnixMs,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.trans.get_mut(gid) {
            Some((g, _)) if unfinished(g) => {
                g.owner = owner.to_owned();
                g.next_cron_time = lease_until;
                g.update_time = now;
                true
            }
            _ => false,
        }))
    }

    async fn scan(&self, q: &ScanQuery) -> Result<ScanPage, StoreError> {
        let below = match q.position.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => p
                .parse::<i64>()
                .map_err(|_| StoreError::Backend(format!("bad position {p:?}").into()))?,
            None => i64::MAX,
        };
        let mut page: Vec<Global> = self.with(|s| {
            s.trans
                .values()
                .map(|(g, _)| g.clone())
                .filter(|g| {
                    g.id < below
                        && q.gid.as_deref().is_none_or(|x| x == g.gid)
                        && q.gid_prefix.as_deref().is_none_or(|p| g.gid.starts_with(p))
                        && q.status.as_deref().is_none_or(|x| x == g.status.as_str())
                        && q.trans_type
                            .as_deref()
                            .is_none_or(|x| x == g.trans_type.as_str())
                        && q.create_time_start.is_none_or(|t| g.create_time >= t)
                        && q.create_time_end.is_none_or(|t| g.create_time <= t)
                })
                .collect()
        });
        page.sort_by_key(|g| std::cmp::Reverse(g.id));
        page.truncate(q.limit as usize);
        Ok(ScanPage::new(page, q.limit))
    }

    async fn reset_cron_time(
        &self,
        after: UnixMs,
        now: UnixMs,
        limit: u32,
    ) -> Result<(u64, bool), StoreError> {
        Ok(self.with(|s| {
            let mut due: Vec<&mut Global> = s
                .trans
                .values_mut()
                .map(|(g, _)| g)
                .filter(|g| unfinished(g) && g.next_cron_time > after)
                .collect();
            due.sort_by_key(|g| (g.next_cron_time, g.id));
            let more = due.len() > limit as usize;
            let mut n = 0;
            for g in due.into_iter().take(limit as usize) {
                g.next_cron_time = now;
                g.update_time = now;
                n += 1;
            }
            (n, more)
        }))
    }

    async fn reset_next_cron_time(&self, gid: &str, now: UnixMs) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.trans.get_mut(gid) {
            Some((g, _)) if unfinished(g) => {
                g.next_cron_time = now;
                g.update_time = now;
                true
            }
            _ => false,
        }))
    }

    async fn topic(&self, name: &str) -> Result<Option<Topic>, StoreError> {
        Ok(self.with(|s| s.topics.get(name).cloned()))
    }

    async fn put_topic(&self, topic: &Topic) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let stored = s.topics.get(&topic.name).map_or(0, |t| t.version);
            if stored != topic.version {
                return false;
            }
            let next = Topic {
                version: stored + 1,
                ..topic.clone()
            };
            s.topics.insert(topic.name.clone(), next);
            true
        }))
    }

    async fn delete_topic(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.with(|s| s.topics.remove(name).is_some()))
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        Ok(self.with(|s| {
            let mut backlog = Backlog::default();
            for (g, _) in s.trans.values().filter(|(g, _)| unfinished(g)) {
                match backlog
                    .unfinished
                    .iter_mut()
                    .find(|(st, _)| *st == g.status)
                {
                    Some((_, n)) => *n += 1,
                    None => backlog.unfinished.push((g.status, 1)),
                }
                let due = g.next_cron_time;
                backlog.earliest_due = Some(backlog.earliest_due.map_or(due, |e| e.min(due)));
            }
            backlog
        }))
    }

    async fn probe(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
