//! Msg topics, over both transports: subscribers registered with `subscribe` (HTTP) or
//! `Subscribe` (gRPC), a msg whose action is `topic://<name>` calling every subscriber once
//! (branches `01-01`, `01-02`, …), unsubscribing before a submit, and an unknown topic refused.

use dtmcli::proto::DtmTopicRequest;
use dtmcli::proto::dtm_client::DtmClient;
use dtmcli::{ClientError, Msg};
use dtmtest::BOTH;
use e2e::{Stack, Transport, gid, table};

/// Subscribes `url` to `topic` through the API of transport `t`.
async fn subscribe(s: &Stack, t: Transport, topic: &str, url: &str) {
    match t {
        Transport::Http => {
            let q = format!(
                "{}/subscribe?topic={topic}&url={}&remark=e2e",
                s.dtm_http,
                url.replace('&', "%26")
            );
            let (code, reply) = s.get(&q).await;
            assert_eq!(code, 200, "{reply}");
        }
        Transport::Grpc => {
            let mut client = DtmClient::connect(format!("http://{}", s.dtm_grpc))
                .await
                .expect("connect");
            client
                .subscribe(DtmTopicRequest {
                    topic: topic.into(),
                    url: url.into(),
                    remark: "e2e".into(),
                })
                .await
                .expect("Subscribe");
        }
    }
}

#[tokio::test]
async fn a_topic_msg_calls_every_subscriber_and_unsubscribing_leaves_the_rest() {
    let s = Stack::start().await;
    for t in BOTH {
        let topic = format!("orders-{t:?}");
        let names = ["sub-a", "sub-b", "sub-c"].map(|n| format!("{n}-{t:?}"));
        for name in &names {
            subscribe(&s, t, &topic, &s.script_url(t, name)).await;
        }
        // The same URL twice is refused.
        if matches!(t, Transport::Http) {
            let q = format!(
                "{}/subscribe?topic={topic}&url={}",
                s.dtm_http,
                s.script_url(t, &names[0])
            );
            assert_eq!(s.get(&q).await.0, 400);
        }
        let g = gid("topic");
        Msg::new(&s.dtm(t), &g)
            .add(&format!("topic://{topic}"), "{}")
            .wait_result(true)
            .submit()
            .await
            .expect("msg to three subscribers");
        for name in &names {
            assert_eq!(s.script.calls(name).len(), 1, "{t:?} {name}");
        }
        assert_eq!(
            s.branches(&g).await,
            table(&[
                "01-01 action succeed",
                "01-02 action succeed",
                "01-03 action succeed"
            ])
        );

        // Unsubscribe b: the next msg reaches a and c.
        let url_b = s.script_url(t, &names[1]);
        let (code, reply) = s
            .get(&format!(
                "{}/unsubscribe?topic={topic}&url={url_b}",
                s.dtm_http
            ))
            .await;
        assert_eq!(code, 200, "{reply}");
        Msg::new(&s.dtm(t), &gid("topic"))
            .add(&format!("topic://{topic}"), "{}")
            .wait_result(true)
            .submit()
            .await
            .expect("msg to two subscribers");
        let calls: Vec<usize> = names.iter().map(|n| s.script.calls(n).len()).collect();
        assert_eq!(calls, [2, 1, 2], "{t:?}");
    }
}

#[tokio::test]
async fn an_unknown_topic_is_refused_and_a_deleted_one_is_gone() {
    let s = Stack::start().await;
    let t = Transport::Http;
    let r = Msg::new(&s.dtm(t), &gid("no-topic"))
        .add("topic://nobody-listens", "{}")
        .submit()
        .await;
    let Err(ClientError::Answer { status, message }) = &r else {
        panic!("{r:?}");
    };
    assert_eq!(status, "400");
    assert!(message.contains("topic not found"), "{message}");

    subscribe(&s, t, "short-lived", &s.script_url(t, "short")).await;
    let res = s
        .client
        .delete(format!("{}/topic/short-lived", s.dtm_http))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 200);
    let r = Msg::new(&s.dtm(t), &gid("deleted-topic"))
        .add("topic://short-lived", "{}")
        .submit()
        .await;
    assert!(matches!(r, Err(ClientError::Answer { .. })), "{r:?}");
}
