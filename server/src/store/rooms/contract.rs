//! The waiting-room contract every backend passes (in memory here, Redis in the system
//! tests): one lane per person whatever the races, the pre-queue closed once with the
//! first seed, admission that only rises, once per tick.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Lane, RoomStore};
use crate::domain::{PhaseId, synthetic_id};

fn phase(id: &str) -> PhaseId {
    PhaseId::parse(id).expect("phase id")
}

/// Runs every check on `rooms` (each on its own phase, so one store will do).
pub async fn run_all(rooms: Arc<dyn RoomStore>) {
    lanes_are_kept_and_the_shuffle_closes_the_pre_queue_once(&*rooms).await;
    admission_only_rises_once_per_tick(&*rooms).await;
    racing_joins_give_one_lane_per_person(rooms).await;
}

/// Before the close everyone is in the pre-queue, in join order; the first seed wins;
/// after it people queue late, numbered from 1; the same person gets their lane back.
pub async fn lanes_are_kept_and_the_shuffle_closes_the_pre_queue_once(rooms: &dyn RoomStore) {
    let p = phase("RC1");
    let empty = rooms.state(&p).await.expect("state");
    assert_eq!((empty.seed, empty.total(), empty.admitted), (None, 0, 0));
    for n in [3, 1, 2] {
        assert_eq!(
            rooms.join(&p, synthetic_id(n)).await.expect("join"),
            Lane::Pre
        );
    }
    assert_eq!(
        rooms.join(&p, synthetic_id(1)).await.expect("again"),
        Lane::Pre
    );
    assert_eq!(
        rooms.pre_queue(&p).await.expect("pre"),
        vec![synthetic_id(3), synthetic_id(1), synthetic_id(2)]
    );
    let closed = rooms.close(&p, [7; 16]).await.expect("close");
    assert_eq!(
        (closed.seed, closed.pre, closed.late),
        (Some([7; 16]), 3, 0)
    );
    let again = rooms.close(&p, [9; 16]).await.expect("close again");
    assert_eq!(again.seed, Some([7; 16]), "the first seed stays");

    assert_eq!(
        rooms.join(&p, synthetic_id(8)).await.expect("late"),
        Lane::Late(1)
    );
    assert_eq!(
        rooms.join(&p, synthetic_id(9)).await.expect("late"),
        Lane::Late(2)
    );
    assert_eq!(
        rooms.join(&p, synthetic_id(8)).await.expect("late again"),
        Lane::Late(1)
    );
    assert_eq!(
        rooms.join(&p, synthetic_id(2)).await.expect("pre again"),
        Lane::Pre
    );
    let s = rooms.state(&p).await.expect("state");
    assert_eq!((s.pre, s.late), (3, 2));
    assert_eq!(rooms.pre_queue(&p).await.expect("pre").len(), 3, "frozen");
    // Another phase's room is another room.
    assert_eq!(
        rooms
            .join(&phase("RC9"), synthetic_id(8))
            .await
            .expect("other"),
        Lane::Pre
    );
}

/// A step applies once per tick (a later tick only), sets the window, and never lowers
/// the admitted count.
pub async fn admission_only_rises_once_per_tick(rooms: &dyn RoomStore) {
    let p = phase("RC2");
    let s = rooms.advance(&p, 100, 40, 30).await.expect("advance");
    assert_eq!((s.tick, s.window, s.admitted), (100, 40, 30));
    let same_tick = rooms.advance(&p, 100, 99, 99).await.expect("same tick");
    assert_eq!(
        (same_tick.window, same_tick.admitted),
        (40, 30),
        "once per tick"
    );
    let lower = rooms.advance(&p, 101, 20, 10).await.expect("lower");
    assert_eq!((lower.tick, lower.window, lower.admitted), (101, 20, 30));
    let older = rooms.advance(&p, 99, 5, 500).await.expect("older");
    assert_eq!(older.admitted, 30, "an older tick changes nothing");
    assert_eq!(rooms.state(&p).await.expect("state").admitted, 30);
}

/// Many people joining at once, each several times from several places: one lane each,
/// the pre-queue holds each once; after the close, late numbers are 1..=n, each once.
pub async fn racing_joins_give_one_lane_per_person(rooms: Arc<dyn RoomStore>) {
    let p = phase("RC3");
    let mut tasks = Vec::new();
    for n in 0..200u64 {
        for _ in 0..3 {
            let (rooms, p) = (rooms.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                rooms.join(&p, synthetic_id(n)).await.expect("join")
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), Lane::Pre);
    }
    let pre = rooms.pre_queue(&p).await.expect("pre");
    assert_eq!(pre.len(), 200);
    assert_eq!(pre.iter().collect::<HashSet<_>>().len(), 200);
    rooms.close(&p, [1; 16]).await.expect("close");
    let mut tasks = Vec::new();
    for n in 1_000..1_100u64 {
        for _ in 0..3 {
            let (rooms, p) = (rooms.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                (n, rooms.join(&p, synthetic_id(n)).await.expect("join"))
            }));
        }
    }
    let mut numbers = std::collections::HashMap::new();
    for t in tasks {
        let (n, lane) = t.await.expect("task");
        let Lane::Late(k) = lane else {
            panic!("{n} queued {lane:?} after the close")
        };
        assert_eq!(*numbers.entry(n).or_insert(k), k, "{n} got two numbers");
    }
    let mut ks: Vec<u64> = numbers.values().copied().collect();
    ks.sort_unstable();
    assert_eq!(ks, (1..=100).collect::<Vec<_>>());
    let s = rooms.state(&p).await.expect("state");
    assert_eq!((s.pre, s.late), (200, 100));
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_rooms_meet_the_contract() {
        super::run_all(std::sync::Arc::new(super::super::MemoryRooms::default())).await;
    }
}
