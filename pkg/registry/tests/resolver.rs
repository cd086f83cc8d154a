//! What a resolver fed by untrusted URLs may do: a restricted one looks only in its own etcd
//! cluster, and a channel nobody asks for stops polling. Loopback addresses only; nothing needs
//! to listen (channels connect lazily).

use std::time::{Duration, Instant};

use registry::Resolver;

#[tokio::test]
async fn a_restricted_resolver_looks_only_in_its_own_cluster() {
    let own = vec!["127.0.0.1:2379".to_owned()];
    let r = Resolver::restricted(&own).expect("resolver");
    assert!(r.permits("etcd://127.0.0.1:2379/dtmservice").is_ok());
    assert!(r.permits("discovery:///stock").is_ok());
    for other in [
        "etcd://127.0.0.2:2379/dtmservice",
        "etcd://127.0.0.1:2379,127.0.0.2:2379/dtmservice",
        "discovery://127.0.0.2:2379/stock",
    ] {
        let e = r.permits(other).expect_err(other).to_string();
        assert!(e.contains("127.0.0.2:2379"), "{e}");
        assert!(r.channel(other).is_err(), "{other} got a channel");
    }
    assert_eq!(r.followed(), 0);
    // No registry configured: no etcd URL at all.
    let none = Resolver::restricted(&[]).expect("resolver");
    assert!(none.permits("etcd://127.0.0.1:2379/dtmservice").is_err());
    // An SDK's own resolver is not restricted.
    assert!(
        Resolver::default()
            .permits("etcd://127.0.0.2:2379/k")
            .is_ok()
    );
}

#[tokio::test]
async fn a_channel_nobody_uses_stops_polling() {
    // Port 1 on loopback: nothing listens, so every refresh fails (and is retried) until idle.
    let r = Resolver::default().with_idle(Duration::from_millis(200));
    r.channel("etcd://127.0.0.1:1/unused").expect("channel");
    r.channel("etcd://127.0.0.1:1/unused")
        .expect("the same channel");
    assert_eq!(r.followed(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.followed() != 0 {
        assert!(Instant::now() < deadline, "still followed after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
