//! The identity store on a real `redis-server`: the shared contract, and what several
//! instances on one Redis must agree on (serials, single-use marks, failure counts).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use slotd::config::Durability;
use slotd::domain::synthetic_id;
use slotd::identity::RegisterOutcome;
use slotd::store::RedisStore;
use slotd::store::identity::{IdentityStore, RedisIdentity, contract};
use slotd_system_tests::redis_server::RedisServer;
use time::OffsetDateTime;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn identity(url: &str, prefix: &str) -> (RedisStore, RedisIdentity) {
    let store = RedisStore::connect(url, prefix, TIMEOUT, Durability::Fast, false)
        .await
        .expect("connects to the test Redis");
    let (conn, prefix, timeout) = store.shared_connection();
    let identity = RedisIdentity::new(conn, &prefix, timeout);
    (store, identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_identity_store_meets_the_contract() {
    let redis = RedisServer::fast();
    let n = AtomicUsize::new(0);
    let keep = std::sync::Mutex::new(Vec::new());
    contract::run_all(|| {
        let (url, prefix) = (
            redis.url(),
            format!("i{}", n.fetch_add(1, Ordering::Relaxed)),
        );
        let keep = &keep;
        async move {
            let (store, identity) = identity(&url, &prefix).await;
            keep.lock().expect("lock").push(store);
            identity
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_serials_marks_and_failures() {
    let redis = RedisServer::fast();
    let url = redis.url();
    let mut stores = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (s, i) = identity(&url, "x").await;
        stores.push(s);
        ids.push(Arc::new(i));
    }
    // 150 people register through three instances at once: serials are unique and
    // dense, whichever instance took them.
    let now = OffsetDateTime::now_utc();
    let tasks: Vec<_> = (0..150u64)
        .map(|n| {
            let id = ids[n as usize % 3].clone();
            tokio::spawn(async move {
                id.register(synthetic_id(n), contract::form("x", &["AZ"]), now)
                    .await
                    .expect("register")
            })
        })
        .collect();
    let mut serials = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            RegisterOutcome::Registered(r) => serials.push(r.serial),
            other => panic!("{other:?}"),
        }
    }
    serials.sort_unstable();
    assert_eq!(serials, (1..=150).collect::<Vec<u64>>());
    // A registration made on one instance is seen and modified on another.
    let seen = ids[1].registration(synthetic_id(0)).await.expect("read");
    let modified = ids[2]
        .modify(synthetic_id(0), contract::form("moved", &["Moderna"]), now)
        .await
        .expect("modify")
        .expect("registered");
    assert_eq!(seen.map(|r| r.serial), Some(modified.serial));
    let again = ids[0].registration(synthetic_id(0)).await.expect("read");
    assert_eq!(again.map(|r| r.form.name), Some("moved".to_string()));
    // A captcha answered on one instance cannot be answered again on another.
    let exp = now.unix_timestamp() + 60;
    assert!(
        ids[0]
            .use_once("captcha:c1".into(), exp)
            .await
            .expect("mark")
    );
    assert!(
        !ids[1]
            .use_once("captcha:c1".into(), exp)
            .await
            .expect("mark")
    );
    assert!(
        !ids[2]
            .use_once("captcha:c1".into(), exp)
            .await
            .expect("mark")
    );
    // Failures counted on each instance add up.
    let t = now.unix_timestamp();
    for id in &ids {
        id.record_failure("acct:1".into(), t, 60)
            .await
            .expect("record");
    }
    assert_eq!(
        ids[0]
            .failures("acct:1".into(), t)
            .await
            .expect("read")
            .count,
        3
    );
    let audit = ids[2].audit().await.expect("audit");
    assert!(audit.ok, "{audit:?}");
    assert_eq!((audit.live, audit.last_serial), (150, 150));
}
