//! A service's database in memory, for testing its use case without one: what
//! `dtmcli::BranchDb::run` decides for a call, with the calls it made recorded.

use std::sync::Mutex;

use dtmcli::branch_db::{Plan, plan};
use dtmcli::{BranchInfo, Outcome};

/// The branch calls a repository in memory ran, in order: `write` (the business write, behind
/// the barrier or as an XA prepare) or `phase_two` (an XA commit or rollback).
#[derive(Debug, Default)]
pub struct MemoryBranches(Mutex<Vec<&'static str>>);

impl MemoryBranches {
    /// `BranchDb::run` without a database: the SDK's plan for `info` and `input`, then `write`
    /// or the phase two (which succeeds: the prepared work is not kept apart in memory).
    pub fn run<T, E>(
        &self,
        info: &BranchInfo,
        input: Result<T, E>,
        write: impl FnOnce(T) -> Result<(), E>,
    ) -> Result<Outcome<()>, E> {
        let call = match plan(info, input)? {
            Plan::Skip(outcome) => return Ok(outcome),
            Plan::PhaseTwo => "phase_two",
            Plan::Write(v) => {
                write(v)?;
                "write"
            }
        };
        self.0.lock().expect("calls").push(call);
        Ok(Outcome::Applied(()))
    }

    /// The calls run so far.
    pub fn calls(&self) -> Vec<&'static str> {
        self.0.lock().expect("calls").clone()
    }
}
