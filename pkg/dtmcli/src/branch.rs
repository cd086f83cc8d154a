//! The transaction context a branch is called with, and the two enums it names: the
//! [`TransType`] of the global transaction and the [`Op`] of the call — one definition for the
//! SDK and the coordinator.

use kit::transcode::DTM_QUERY_TO_METADATA;
use tonic::metadata::MetadataMap;

/// The transaction types of DTM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransType {
    /// Steps of action + compensation.
    Saga,
    /// Two-phase message.
    Msg,
    /// Try / confirm / cancel.
    Tcc,
    /// XA: branches prepared in their databases, then all committed or all rolled back.
    Xa,
    /// Workflow: branches called by the client's own code, the coordinator recording them.
    Workflow,
}

impl TransType {
    /// Every type.
    pub const ALL: [TransType; 5] = [
        TransType::Saga,
        TransType::Msg,
        TransType::Tcc,
        TransType::Xa,
        TransType::Workflow,
    ];

    /// DTM's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransType::Saga => "saga",
            TransType::Msg => "msg",
            TransType::Tcc => "tcc",
            TransType::Xa => "xa",
            TransType::Workflow => "workflow",
        }
    }

    /// Parses DTM's spelling.
    pub fn parse(s: &str) -> Option<TransType> {
        TransType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for TransType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a branch call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Saga, msg and XA forward step.
    Action,
    /// Saga compensation.
    Compensate,
    /// TCC first phase (called by the client's SDK).
    Try,
    /// TCC phase two, forward.
    Confirm,
    /// TCC phase two, backward.
    Cancel,
    /// XA phase two, forward: `XA COMMIT` / `COMMIT PREPARED`.
    Commit,
    /// XA phase two, backward: `XA ROLLBACK` / `ROLLBACK PREPARED`.
    Rollback,
    /// The msg check-back (`query_prepared`, branch `00`).
    Msg,
    /// A workflow's XA step, recorded as prepared before its phase two (a replayed `business`
    /// record without its `commit` or `rollback` means the local transaction's fate is unknown).
    Business,
}

impl Op {
    /// Every op.
    pub const ALL: [Op; 9] = [
        Op::Action,
        Op::Compensate,
        Op::Try,
        Op::Confirm,
        Op::Cancel,
        Op::Commit,
        Op::Rollback,
        Op::Msg,
        Op::Business,
    ];

    /// DTM's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Action => "action",
            Op::Compensate => "compensate",
            Op::Try => "try",
            Op::Confirm => "confirm",
            Op::Cancel => "cancel",
            Op::Commit => "commit",
            Op::Rollback => "rollback",
            Op::Msg => "msg",
            Op::Business => "business",
        }
    }

    /// Parses DTM's spelling.
    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Whether this op undoes a forward step: a saga compensation, a TCC cancel, an XA
    /// rollback.
    pub fn undoes(self) -> bool {
        matches!(self, Op::Compensate | Op::Cancel | Op::Rollback)
    }

    /// The forward op a backward one undoes (its barrier row is the one a late forward call
    /// finds): cancel → try, compensate and rollback → action.
    pub fn undone(self) -> Option<Op> {
        match self {
            Op::Cancel => Some(Op::Try),
            Op::Compensate | Op::Rollback => Some(Op::Action),
            _ => None,
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling this branch: DTM's `gid, trans_type, branch_id, op` (and, from SDKs, `dtm`,
/// `phase2_url`). Over gRPC they arrive as metadata `dtm-gid, dtm-trans_type, …`; over HTTP as
/// query parameters, which the transcoder copies into the same metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchInfo {
    /// Global transaction id.
    pub gid: String,
    /// The global transaction's type.
    pub trans_type: TransType,
    /// The branch within the global transaction (`01`, `02`, nested `0201`; `00` for msg
    /// check-back).
    pub branch_id: String,
    /// What this call does.
    pub op: Op,
    /// The coordinator's address, when an SDK made the call (TCC try, XA action); empty from the
    /// coordinator.
    pub dtm: String,
    /// XA phase-2 URL, when an SDK made an XA action call.
    pub phase2_url: String,
}

impl BranchInfo {
    /// Whether this call may refuse, i.e. answer FAILURE and roll the global transaction back:
    /// a saga, XA or workflow action, a TCC try, a msg check-back (op `msg`). Compensations,
    /// confirms, cancels and msg actions must eventually succeed (docs/dtm-protocol.md,
    /// Results): a FAILURE there is retried for ever, or would end a msg that cannot roll back.
    pub fn may_refuse(&self) -> bool {
        matches!(
            (self.trans_type, self.op),
            (
                TransType::Saga | TransType::Xa | TransType::Workflow,
                Op::Action
            ) | (TransType::Tcc, Op::Try)
                | (TransType::Msg, Op::Msg)
        )
    }

    /// Whether this call undoes a forward step: a saga compensation, a TCC cancel, an XA
    /// rollback (see [`crate::branch_db::plan`]).
    pub fn undoes(&self) -> bool {
        self.op.undoes()
    }

    /// Reads the context from gRPC metadata; `gid, trans_type, branch_id, op` are required, and
    /// `trans_type` and `op` must be DTM's.
    pub fn from_metadata(md: &MetadataMap) -> Result<BranchInfo, kit::Error> {
        let get = |key: &str| {
            md.get(key)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (gid, trans_type, branch_id, op) = (
            get("dtm-gid"),
            get("dtm-trans_type"),
            get("dtm-branch_id"),
            get("dtm-op"),
        );
        let missing: Vec<&str> = [
            ("gid", &gid),
            ("trans_type", &trans_type),
            ("branch_id", &branch_id),
            ("op", &op),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
        if !missing.is_empty() {
            return Err(kit::Error::bad_request(
                "DTM_CONTEXT",
                format!(
                    "missing DTM branch context: {} (query parameters over HTTP, dtm-* metadata over gRPC)",
                    missing.join(", ")
                ),
            ));
        }
        let unknown = |what: &str, value: &str| {
            kit::Error::bad_request("DTM_CONTEXT", format!("unknown {what} {value:?}"))
        };
        Ok(BranchInfo {
            trans_type: TransType::parse(&trans_type)
                .ok_or_else(|| unknown("trans_type", &trans_type))?,
            op: Op::parse(&op).ok_or_else(|| unknown("op", &op))?,
            gid,
            branch_id,
            dtm: get("dtm-dtm"),
            phase2_url: get("dtm-phase2_url"),
        })
    }

    /// Writes the context as gRPC metadata, the way the coordinator (and, with `dtm` and
    /// `phase2_url`, an SDK) sends it.
    pub fn to_metadata(&self, md: &mut MetadataMap) -> Result<(), kit::Error> {
        for (_, key, value) in self.fields() {
            let value = value.parse().map_err(|_| {
                kit::Error::bad_request("DTM_CONTEXT", format!("{key} must be ASCII"))
            })?;
            md.insert(key, value);
        }
        Ok(())
    }

    /// The query string DTM appends to an HTTP branch URL: `gid=…&trans_type=…&branch_id=…&op=…`,
    /// then `dtm` and `phase2_url` when an SDK sets them.
    pub fn to_query(&self) -> Vec<(&'static str, &str)> {
        self.fields()
            .map(|(query, _, value)| (query, value))
            .collect()
    }

    /// The context as (query name, metadata name, value), named by kit's one table of DTM's
    /// parameters; `dtm` and `phase2_url` only when set (an SDK's call).
    fn fields(&self) -> impl Iterator<Item = (&'static str, &'static str, &str)> {
        DTM_QUERY_TO_METADATA.iter().filter_map(|&(query, key)| {
            let value = match query {
                "gid" => &self.gid,
                "trans_type" => self.trans_type.as_str(),
                "branch_id" => &self.branch_id,
                "op" => self.op.as_str(),
                "dtm" => &self.dtm,
                _ => &self.phase2_url,
            };
            let optional = matches!(query, "dtm" | "phase2_url");
            (!optional || !value.is_empty()).then_some((query, key, value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trip() {
        let info = BranchInfo {
            gid: "g1".into(),
            trans_type: TransType::Saga,
            branch_id: "01".into(),
            op: Op::Action,
            dtm: "127.0.0.1:36790".into(),
            phase2_url: "127.0.0.1:9000/pkg.Svc/M".into(),
        };
        let mut md = MetadataMap::new();
        info.to_metadata(&mut md).unwrap();
        assert_eq!(BranchInfo::from_metadata(&md).unwrap(), info);
    }

    #[test]
    fn spellings_round_trip_and_unknown_ones_are_refused() {
        for t in TransType::ALL {
            assert_eq!(TransType::parse(t.as_str()), Some(t));
        }
        for o in Op::ALL {
            assert_eq!(Op::parse(o.as_str()), Some(o));
        }
        let mut md = MetadataMap::new();
        for (k, v) in [
            ("dtm-gid", "g1"),
            ("dtm-trans_type", "saga"),
            ("dtm-branch_id", "01"),
            ("dtm-op", "launch"),
        ] {
            md.insert(k, v.parse().unwrap());
        }
        let err = BranchInfo::from_metadata(&md).unwrap_err();
        assert!(
            err.message.contains("unknown op \"launch\""),
            "{}",
            err.message
        );
    }

    #[test]
    fn missing_fields_are_a_bad_request_naming_them() {
        let mut md = MetadataMap::new();
        md.insert("dtm-gid", "g1".parse().unwrap());
        let err = BranchInfo::from_metadata(&md).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.contains("trans_type, branch_id, op"),
            "{}",
            err.message
        );
    }
}
