//! Driving a transaction: one round under its lease, then its next visit scheduled. The API
//! operations and the poller call these; the round's steps are each type's (`trans_type`).
//!
//! ONGOING keeps the base interval; an error doubles it, up to `RetryMaxInterval`.

use tracing::Instrument;

use crate::biz::driver::Driver;
use crate::biz::round::{Next, Round, Step, Trans};
use crate::biz::{CustomData, Global, StoreError, TransError, trans_type};

/// Reads `gid` from the store and drives it for one round (see [`drive_loaded`]).
pub(crate) async fn drive(d: &Driver, gid: &str) -> Result<Global, TransError> {
    let t = load(d, gid).await?;
    drive_loaded(d, t).await
}

/// Drives a transaction for one round while holding its lease, then schedules the next
/// visit. Returns the transaction as the round left it.
pub(crate) async fn drive_loaded(d: &Driver, t: Trans) -> Result<Global, TransError> {
    let gid = t.global.gid.clone();
    // A round continues the trace of the request that created the transaction.
    let span = kit::trace::span_from(
        tracing::info_span!(
            "round",
            gid = %gid,
            trans_type = t.global.trans_type.as_str(),
            trace_id = tracing::field::Empty,
        ),
        &t.global.options.traceparent,
    );
    let timeout = trans_type::timeout(&d.policy, t.global.trans_type, &t.global.options);
    let mut round = Round::new(d, t, timeout);
    let next = {
        // The lease is renewed beside the round, in this task (no task per round). A renewal
        // cut short when the round ends has either not reached the store or was queued
        // before anything the round writes next, so it cannot overtake the schedule below.
        let run = run(&mut round).instrument(span);
        let renewal = renew_lease(d, &gid);
        tokio::pin!(run, renewal);
        tokio::select! {
            biased;
            next = &mut run => next,
            () = &mut renewal => run.await,
        }
    };
    let global = round.into_global();
    let age = d.clock.now() - global.create_time;
    let settled = matches!(next, Ok(Next::Done | Next::At(_)));
    d.observer
        .transaction_processed(global.trans_type.as_str(), settled, age);
    if let Ok(Next::Done) = next {
        return Ok(global);
    }
    // Not final: the slow path, where a fresh read costs nothing that matters and shows
    // what others (forceStop, another instance) did meanwhile.
    let g = d.must_find(&gid).await?;
    let now = d.clock.now();
    let base = d.policy.base_interval(&g.options);
    let cap = d.policy.retry_max_interval.max(base);
    let current = g.next_cron_interval.clamp(base, cap);
    let (at, interval) = match next {
        Ok(Next::Done) => return Ok(g),
        Ok(Next::At(at)) => (at, current),
        Ok(Next::Ongoing(why)) => {
            tracing::info!(%gid, %why, "ongoing");
            (now + base, base)
        }
        Ok(Next::Error(why)) => {
            tracing::warn!(%gid, %why, retry_in = ?current, "branch error");
            (now + current, current.saturating_mul(2).min(cap))
        }
        Err(e) => {
            tracing::warn!(%gid, error = %e, retry_in = ?current, "round failed");
            (now + current, current.saturating_mul(2).min(cap))
        }
    };
    if !g.status.is_final() {
        d.store
            .schedule(&gid, &d.owner, at, Some(interval), now)
            .await?;
    }
    Ok(g)
}

/// A transaction and its branches, from the store. A `custom_data` that no longer parses is
/// an error, as corrupt options are: running it with defaults would quietly change what it
/// does (a concurrent saga turned sequential).
pub(crate) async fn load(d: &Driver, gid: &str) -> Result<Trans, TransError> {
    let global = d.must_find(gid).await?;
    let branches = d.store.branches(gid).await?;
    let custom = CustomData::stored(&global, &branches).map_err(|e| {
        StoreError::Backend(format!("the stored custom_data of {gid} is corrupt: {e}").into())
    })?;
    Ok(Trans {
        global,
        branches,
        custom,
    })
}

/// Steps until the transaction is final or a step says when to come back.
async fn run(round: &mut Round<'_>) -> Result<Next, TransError> {
    loop {
        if round.t.global.status.is_final() {
            return Ok(Next::Done);
        }
        match trans_type::step(round).await? {
            Step::Again => {}
            Step::Reload => round.t = load(round.d, &round.t.global.gid).await?,
            Step::Stop(next) => return Ok(next),
        }
    }
}

/// Extends the lease every third of its length; returns when it cannot (the transaction
/// finished, or another instance took it over).
async fn renew_lease(d: &Driver, gid: &str) {
    let lease = d.policy.lease();
    loop {
        tokio::time::sleep(lease / 3).await;
        let now = d.clock.now();
        match d
            .store
            .schedule(gid, &d.owner, now + lease, None, now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(%gid, error = %e, "renewing the lease"),
        }
    }
}
