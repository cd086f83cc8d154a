//! Workflow, DTM's fifth transaction type: the transaction is code in the client; each step is a
//! branch the client calls and the coordinator records; a client that stops half-way is resumed
//! by the coordinator and replays what was recorded (docs/dtm-protocol.md, Workflow).

use prost::Message;

use crate::proto::workflow::WorkflowData;

/// The body of a workflow's resume call: its input as it is over HTTP, wrapped in
/// `workflow.WorkflowData` over gRPC (`protocol` `grpc`).
pub fn resume_body(protocol: &str, input: &[u8]) -> Vec<u8> {
    if protocol == "grpc" {
        WorkflowData {
            data: input.to_vec(),
        }
        .encode_to_vec()
    } else {
        input.to_vec()
    }
}
