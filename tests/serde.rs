//! With the `serde` feature, `Stats` and `WorkerStats` serialize; the JSON
//! carries every figure under its field name (`cargo test --features serde`).
#![cfg(feature = "serde")]

use std::time::Duration;

use serde_json::{json, Value};
use stealpool::Pool;

/// How serde writes a `Duration`.
fn duration(d: Duration) -> Value {
    json!({ "secs": d.as_secs(), "nanos": d.subsec_nanos() })
}

#[test]
fn stats_and_worker_stats_serialize_every_field() {
    let pool = Pool::builder()
        .capacity(2)
        .max_capacity(3)
        .pin_workers(false)
        .measure_queue_delay(true)
        .build()
        .unwrap();
    for _ in 0..20 {
        pool.submit(|| std::thread::sleep(Duration::from_millis(1))).unwrap();
    }
    pool.wait_idle();
    let stats = pool.stats();
    let value = serde_json::to_value(stats).unwrap();
    assert_eq!(value["capacity"], json!(2));
    assert_eq!(value["max_capacity"], json!(3));
    assert_eq!(value["submitted"], json!(20));
    assert_eq!(value["completed"], json!(20));
    assert_eq!(value["busy_time"], duration(stats.busy_time));
    let delay = stats.queue_delay.unwrap();
    assert_eq!(value["queue_delay"]["count"], json!(20));
    assert_eq!(value["queue_delay"]["p99"], duration(delay.p99));
    assert_eq!(value["queue_delay"]["total"], duration(delay.total));
    // Every field is there: as many keys as the Debug form has fields.
    let debug = format!("{stats:?}");
    let debug_fields = debug.matches(": ").count() - debug.matches("QueueDelay").count() * 5;
    assert_eq!(value.as_object().unwrap().len(), debug_fields, "{value}\n{debug}");

    let workers = pool.worker_stats();
    let value = serde_json::to_value(&workers).unwrap();
    let array = value.as_array().unwrap();
    // One entry per slot that has or had a thread: capacity 2 starts at most 2.
    assert_eq!(array.len(), workers.len());
    assert!((1..=2).contains(&array.len()), "{value}");
    for (w, v) in workers.iter().zip(array) {
        assert_eq!(v["index"], json!(w.index));
        assert_eq!(v["tasks_run"], json!(w.tasks_run));
        assert_eq!(v["steals"], json!(w.steals));
        assert_eq!(v["parks"], json!(w.parks));
        assert_eq!(v["busy_time"], duration(w.busy_time));
        assert_eq!(v["state"], json!(format!("{:?}", w.state)));
    }
    // The whole text parses back to the same value.
    let text = serde_json::to_string(&stats).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::to_value(stats).unwrap()
    );
    pool.shutdown();
}

#[test]
fn an_unmeasured_pool_serializes_queue_delay_as_null() {
    let pool = Pool::builder().capacity(1).pin_workers(false).build().unwrap();
    let value = serde_json::to_value(pool.stats()).unwrap();
    assert_eq!(value["queue_delay"], Value::Null);
    pool.shutdown();
}
