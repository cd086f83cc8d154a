//! PlaceOrder's steps: which service's branches it calls, in order, with what. A service joins
//! PlaceOrder with one [`Step`] here and its endpoints under `dtm.services` in the config
//! (docs/template.md, "Add it to PlaceOrder").

use api::order::v1 as order_api;
use api::stock::v1 as stock_api;
use kit::transcode::HttpRule;
use prost::Message;

use crate::biz::NewOrder;

/// One service's part in a global transaction: its branches, named by their generated routes
/// (each knows its HTTP path and its gRPC method), and the request every one of them takes.
pub struct Step {
    /// The service's name under `dtm.services`.
    pub service: &'static str,
    /// Saga action and compensation.
    pub saga: [&'static HttpRule; 2],
    /// TCC try, confirm and cancel.
    pub tcc: [&'static HttpRule; 3],
    /// The XA branch (called again with op `commit` or `rollback` in phase two).
    pub xa: &'static HttpRule,
    /// The request message, protobuf-encoded (sent as its proto3 JSON to HTTP branches).
    pub request: Vec<u8>,
}

/// PlaceOrder's steps, in the order they run: the goods leave the stock, then the order is
/// recorded (its per-order limit is checked there, so a refused order shows a compensation).
pub fn place_order(o: &NewOrder) -> Vec<Step> {
    vec![
        Step {
            service: "stock",
            saga: [
                &stock_api::HTTP_TRANS_OUT,
                &stock_api::HTTP_TRANS_OUT_COMPENSATE,
            ],
            tcc: [
                &stock_api::HTTP_TRANS_OUT_TRY,
                &stock_api::HTTP_TRANS_OUT_CONFIRM,
                &stock_api::HTTP_TRANS_OUT_CANCEL,
            ],
            xa: &stock_api::HTTP_TRANS_OUT_XA,
            request: stock_api::StockRequest {
                sku: o.sku.clone(),
                quantity: o.quantity,
            }
            .encode_to_vec(),
        },
        Step {
            service: "order",
            saga: [
                &order_api::HTTP_TRANS_IN,
                &order_api::HTTP_TRANS_IN_COMPENSATE,
            ],
            tcc: [
                &order_api::HTTP_TRANS_IN_TRY,
                &order_api::HTTP_TRANS_IN_CONFIRM,
                &order_api::HTTP_TRANS_IN_CANCEL,
            ],
            xa: &order_api::HTTP_TRANS_IN_XA,
            request: order_api::OrderRequest {
                order_id: o.id.clone(),
                user_id: o.user_id,
                sku: o.sku.clone(),
                quantity: o.quantity,
            }
            .encode_to_vec(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step, a new one included: its branches are its own service's, each takes the
    /// step's request, and the request is that message (for stock and order: the order's item).
    #[test]
    fn every_step_calls_its_own_service_with_its_request() {
        let o = NewOrder {
            id: "o1".into(),
            user_id: 7,
            sku: "SKU-A".into(),
            quantity: 3,
        };
        let steps = place_order(&o);
        assert_eq!(steps[0].service, "stock", "the goods leave the stock first");
        for s in &steps {
            let rules = s.saga.iter().chain(&s.tcc).chain([&s.xa]);
            for rule in rules {
                let (path, operation) = (
                    format!("/api/{}/v1/", s.service),
                    format!("/api.{}.v1.", s.service),
                );
                assert!(rule.path.starts_with(&path), "{}: {}", s.service, rule.path);
                assert!(rule.operation.starts_with(&operation), "{}", rule.operation);
                assert_eq!(
                    rule.input, s.saga[0].input,
                    "{}: one request",
                    rule.operation
                );
            }
            let json = kit::transcode::to_json(api::descriptor_pool(), s.saga[0].input, &s.request)
                .expect("the request is the branches' input message");
            let json: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
            if ["stock", "order"].contains(&s.service) {
                assert_eq!(
                    (&json["sku"], &json["quantity"]),
                    (&"SKU-A".into(), &3.into())
                );
            }
        }
    }
}
