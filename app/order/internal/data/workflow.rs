//! PlaceOrder as a workflow (`MODE_WORKFLOW`): this service runs the transaction itself with
//! `dtmcli::workflow`, step by step, over the transport the caller chose — every remote step of
//! [`steps::place_order`] as a saga-style branch (its action, its compensation on rollback),
//! the order's own step as a local one behind the barrier. The coordinator records each step and
//! resumes the workflow here, at [`RESUME_PATH`] or `workflow.Workflow/Execute`, if this
//! process stops before it ends.

use api::order::v1 as order_api;
use dtmcli::workflow::{WorkflowError, Workflows};
use prost::Message;

use super::dtm::DtmTransactions;
use super::steps;
use crate::biz::{LocalStep, NewOrder, OrderError, Transport};

/// The workflow's name: what a resume asks for.
pub const PLACE_ORDER: &str = "place_order";

/// Where the HTTP resume route is mounted.
pub const RESUME_PATH: &str = "/api/order/v1/workflows/resume";

/// Registers PlaceOrder's workflow on both transports' [`Workflows`], `local` its own step.
pub(super) fn register(tx: &DtmTransactions, local: LocalStep) -> Result<(), OrderError> {
    for t in [Transport::Http, Transport::Grpc] {
        let (tx2, local) = (tx.clone(), local.clone());
        tx.workflows(t)
            .register(PLACE_ORDER, move |wf, input| {
                let (tx, local) = (tx2.clone(), local.clone());
                async move { place_order(&tx, t, &local, wf, &input).await }
            })
            .map_err(|e| OrderError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// The workflow: `input` is the order (an `OrderRequest`). The steps run in order; a FAILURE
/// (short stock, the order's limit) rolls back the steps before it, last first.
async fn place_order(
    tx: &DtmTransactions,
    t: Transport,
    local: &LocalStep,
    wf: dtmcli::workflow::Workflow,
    input: &[u8],
) -> Result<Vec<u8>, WorkflowError> {
    let r = order_api::OrderRequest::decode(input)
        .map_err(|e| WorkflowError::Error(format!("the workflow's input: {e}")))?;
    let o = NewOrder {
        id: r.order_id,
        user_id: r.user_id,
        sku: r.sku,
        quantity: r.quantity,
    };
    for step in steps::place_order(&o) {
        if step.service == "order" {
            // This service's own step: its write in a local transaction, behind the barrier of
            // the workflow's branch — undone the same way.
            let (undo, order) = (local.clone(), o.clone());
            let branch = wf.new_branch().on_rollback(move |p| async move {
                let undone = undo(p.info().clone(), order).await;
                undone
                    .map(drop)
                    .map_err(|e| WorkflowError::Error(e.to_string()))
            });
            branch
                .run(|info| async { local_result(local(info, o.clone()).await) })
                .await?;
            continue;
        }
        let s = tx
            .resolve(t, step)
            .map_err(|e| WorkflowError::Error(e.to_string()))?;
        let protocol = protocol(t);
        let [action, compensate] = s.saga;
        let (caller, body) = (tx.caller().clone(), s.body.clone());
        let branch = wf.new_branch().on_rollback(move |p| async move {
            p.call(&caller, protocol, &compensate, &body).await
        });
        branch.call(tx.caller(), protocol, &action, &s.body).await?;
    }
    Ok(Vec::new())
}

/// The local step's answer: a business refusal is the workflow's FAILURE, anything else that
/// failed an error (resumed later).
fn local_result(r: Result<dtmcli::Outcome<()>, OrderError>) -> Result<Vec<u8>, WorkflowError> {
    match r {
        Ok(_) => Ok(Vec::new()),
        Err(
            e @ (OrderError::QuantityLimit { .. } | OrderError::Invalid(_) | OrderError::Exists(_)),
        ) => Err(WorkflowError::Failure(e.to_string())),
        Err(e) => Err(WorkflowError::Error(e.to_string())),
    }
}

fn protocol(t: Transport) -> &'static str {
    match t {
        Transport::Http => "http",
        Transport::Grpc => "grpc",
    }
}

/// The workflows of this service, one per transport, resumed at its own endpoints
/// (`dtm.services.order`).
pub(super) fn workflows(
    http: &dtmcli::Dtm,
    grpc: &dtmcli::Dtm,
    own: &crate::conf::Endpoints,
) -> [Workflows; 2] {
    let base = own.http.trim_end_matches('/');
    [
        Workflows::new(http.clone(), &format!("{base}{RESUME_PATH}")),
        Workflows::new(grpc.clone(), &Workflows::grpc_resume(&own.grpc)),
    ]
}
