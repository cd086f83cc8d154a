//! The transaction context a branch is called with.

use kit::transcode::DTM_QUERY_TO_METADATA;
use tonic::metadata::MetadataMap;

/// Who is calling this branch: DTM's `gid, trans_type, branch_id, op` (and, from SDKs, `dtm`,
/// `phase2_url`). Over gRPC they arrive as metadata `dtm-gid, dtm-trans_type, …`; over HTTP as
/// query parameters, which the transcoder copies into the same metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BranchInfo {
    /// Global transaction id.
    pub gid: String,
    /// `saga`, `msg`, `tcc`, `xa` or `workflow`.
    pub trans_type: String,
    /// The branch within the global transaction (`01`, `02`, nested `0201`; `00` for msg
    /// check-back).
    pub branch_id: String,
    /// `action`, `compensate`, `try`, `confirm`, `cancel`, `msg`, …
    pub op: String,
    /// The coordinator's address, when an SDK made the call (TCC try, XA action); empty from the
    /// coordinator.
    pub dtm: String,
    /// XA phase-2 URL, when an SDK made an XA action call.
    pub phase2_url: String,
}

impl BranchInfo {
    /// Whether this call may refuse, i.e. answer FAILURE and roll the global transaction back:
    /// a saga or XA action, a TCC try, a msg check-back (op `msg`). Compensations, confirms,
    /// cancels and msg actions must eventually succeed (docs/dtm-protocol.md, Results): a
    /// FAILURE there is retried for ever, or would end a msg that cannot roll back.
    pub fn may_refuse(&self) -> bool {
        matches!(
            (self.trans_type.as_str(), self.op.as_str()),
            ("saga" | "xa", "action") | ("tcc", "try") | ("msg", "msg")
        )
    }

    /// Whether this call undoes a forward step: a saga compensation, a TCC cancel, an XA
    /// rollback (see [`crate::result::nothing_to_undo`]).
    pub fn undoes(&self) -> bool {
        matches!(self.op.as_str(), "compensate" | "cancel" | "rollback")
    }

    /// Reads the context from gRPC metadata; `gid, trans_type, branch_id, op` are required.
    pub fn from_metadata(md: &MetadataMap) -> Result<BranchInfo, kit::Error> {
        let get = |key: &str| {
            md.get(key)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let info = BranchInfo {
            gid: get("dtm-gid"),
            trans_type: get("dtm-trans_type"),
            branch_id: get("dtm-branch_id"),
            op: get("dtm-op"),
            dtm: get("dtm-dtm"),
            phase2_url: get("dtm-phase2_url"),
        };
        let missing: Vec<&str> = [
            ("gid", &info.gid),
            ("trans_type", &info.trans_type),
            ("branch_id", &info.branch_id),
            ("op", &info.op),
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
        Ok(info)
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
                "trans_type" => &self.trans_type,
                "branch_id" => &self.branch_id,
                "op" => &self.op,
                "dtm" => &self.dtm,
                _ => &self.phase2_url,
            };
            let optional = matches!(query, "dtm" | "phase2_url");
            (!optional || !value.is_empty()).then_some((query, key, value.as_str()))
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
            trans_type: "saga".into(),
            branch_id: "01".into(),
            op: "action".into(),
            dtm: "127.0.0.1:36790".into(),
            phase2_url: "127.0.0.1:9000/pkg.Svc/M".into(),
        };
        let mut md = MetadataMap::new();
        info.to_metadata(&mut md).unwrap();
        assert_eq!(BranchInfo::from_metadata(&md).unwrap(), info);
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
