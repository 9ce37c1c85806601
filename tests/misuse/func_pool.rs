//! `FuncPool`: the same refusals hand the argument back; the same bad settings; misuse inside its own function.

use super::*;

// ---------------------------------------------------------------------------
// FuncPool: the same refusals hand the argument back.
// ---------------------------------------------------------------------------

/// An argument with an identity; `Hold` blocks the only worker until its
/// receiver gets a message or its sender is dropped.
enum Arg {
    Hold(mpsc::Sender<()>, Mutex<mpsc::Receiver<()>>),
    Value(u32),
}

fn value(arg: Arg) -> u32 {
    match arg {
        Arg::Value(v) => v,
        Arg::Hold(..) => panic!("got the blocker back"),
    }
}

fn func_pool(limit: usize, nonblocking: bool) -> (FuncPool<Arg>, Arc<Mutex<Vec<u32>>>) {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = ran.clone();
    let fp = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .thread_name(|i| format!("mu-fp-{i}"))
        .queue_limit(limit)
        .nonblocking(nonblocking)
        .build(move |arg: Arg| match arg {
            Arg::Hold(entered, release) => {
                entered.send(()).unwrap();
                let _ = release.lock().unwrap().recv_timeout(Duration::from_secs(60));
            }
            Arg::Value(v) => seen.lock().unwrap().push(v),
        })
        .expect("build");
    (fp, ran)
}

/// Blocks the FuncPool's only worker; drop the sender to release it.
fn hold(fp: &FuncPool<Arg>) -> mpsc::Sender<()> {
    let (release_tx, release_rx) = mpsc::channel();
    let (entered_tx, entered_rx) = mpsc::channel();
    fp.invoke(Arg::Hold(entered_tx, Mutex::new(release_rx)))
        .unwrap_or_else(|_| panic!("blocker refused"));
    entered_rx.recv_timeout(SOON).expect("blocker did not start");
    release_tx
}

#[test]
fn func_pool_refusals_hand_the_argument_back() {
    // Also: func_pool.rs `every_refusal_hands_the_argument_back`,
    // `shutdown_now_hands_back_every_unrun_argument`.
    let _s = serial();
    let _w = Watchdog::new("func_pool_refusals_hand_the_argument_back", 60);
    let expect_back = |outcome: Result<(), SubmitError<Arg>>, kind: &str, v: u32| match outcome {
        Err(e) => {
            let got = match &e {
                SubmitError::Full(_) => "Full",
                SubmitError::Timeout(_) => "Timeout",
                SubmitError::Closed(_) => "Closed",
            };
            assert!(!e.to_string().is_empty());
            assert_eq!(got, kind, "argument {v}");
            assert_eq!(value(e.into_inner()), v, "the very argument comes back");
        }
        Ok(()) => panic!("argument {v} accepted, expected {kind}"),
    };

    // Full and Timeout: queue limit 1, the worker held, one queued.
    let (fp, ran) = func_pool(1, true);
    let release = hold(&fp);
    fp.invoke(Arg::Value(1)).unwrap_or_else(|_| panic!("room for one"));
    expect_back(fp.invoke(Arg::Value(2)), "Full", 2);
    expect_back(
        fp.invoke_timeout(Arg::Value(3), Duration::from_millis(10)),
        "Timeout",
        3,
    );
    expect_back(fp.invoke_timeout(Arg::Value(4), Duration::ZERO), "Timeout", 4);
    // shutdown_now hands back the queued one; later invokes are Closed.
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        drop(release);
    });
    let back: Vec<u32> = fp.shutdown_now().into_iter().map(value).collect();
    releaser.join().unwrap();
    assert_eq!(back, [1]);
    expect_back(fp.invoke(Arg::Value(5)), "Closed", 5);
    expect_back(fp.invoke_timeout(Arg::Value(6), Duration::from_secs(1)), "Closed", 6);
    assert!(ran.lock().unwrap().is_empty(), "nothing but the blocker ran");
    assert_eq!(fp.stats().rejected, 5);

    // Closed after shutdown and after shutdown_timeout; reboot reopens.
    let (fp, ran) = func_pool(8, false);
    fp.invoke(Arg::Value(10))
        .unwrap_or_else(|_| panic!("open pool refused"));
    fp.shutdown();
    expect_back(fp.invoke(Arg::Value(11)), "Closed", 11);
    fp.reboot().expect("reboot");
    fp.invoke(Arg::Value(12))
        .unwrap_or_else(|_| panic!("rebooted pool refused"));
    assert_eq!(fp.shutdown_timeout(SOON), Ok(()));
    expect_back(fp.invoke(Arg::Value(13)), "Closed", 13);
    assert_eq!(*ran.lock().unwrap(), [10, 12], "accepted arguments ran once");
    assert_threads_gone("mu-fp-", "after FuncPool shutdown");
}

#[test]
fn func_pool_bad_settings_are_the_same_build_errors() {
    // Also: func_pool.rs `invalid_health_check_settings_are_refused`.
    let _s = serial();
    let _w = Watchdog::new("func_pool_bad_settings_are_the_same_build_errors", 60);
    let b = || {
        FuncPool::<u8>::builder()
            .pin_workers(false)
            .thread_name(|i| format!("mu-fpb-{i}"))
    };
    let f = |_: u8| ();
    let cases: Vec<(&str, Result<FuncPool<u8>, BuildError>)> = vec![
        ("capacity(0)", b().capacity(0).build(f)),
        (
            "nonblocking without queue_limit",
            b().capacity(1).nonblocking(true).build(f),
        ),
        ("keep_alive(ZERO)", b().capacity(1).keep_alive(Duration::ZERO).build(f)),
        ("min_workers > capacity", b().capacity(1).min_workers(2).build(f)),
        ("max_capacity < capacity", b().capacity(2).max_capacity(1).build(f)),
    ];
    for (what, outcome) in cases {
        let error = outcome.err().unwrap_or_else(|| panic!("{what}: built a FuncPool"));
        let ok = match what {
            "capacity(0)" => matches!(error, BuildError::ZeroCapacity),
            "nonblocking without queue_limit" => matches!(error, BuildError::NonblockingWithoutQueueLimit),
            "keep_alive(ZERO)" => matches!(error, BuildError::ZeroKeepAlive),
            "min_workers > capacity" => matches!(error, BuildError::MinWorkersAboveCapacity { .. }),
            _ => matches!(error, BuildError::MaxCapacityBelowCapacity { .. }),
        };
        assert!(ok, "{what}: wrong variant {error:?}");
        shown(&error);
    }
    assert_eq!(threads_named("mu-fpb-"), 0);
    let fp = b().capacity(1).max_capacity(2).build(f).expect("build");
    assert!(matches!(fp.tune(0), Err(TuneError::Zero)));
    assert!(matches!(fp.tune(3), Err(TuneError::AboveMax { requested: 3, max: 2 })));
    assert_eq!(fp.capacity(), 1);
    fp.shutdown();
}

/// What the FuncPool's function is asked to do with its own pool.
enum Inside {
    WaitIdle,
    Reboot(mpsc::Sender<String>),
    /// Says it started, waits for `go` (the outside fills the queue
    /// meanwhile), then invokes five `Leaf`s from inside.
    Fanout(mpsc::Sender<()>, Mutex<mpsc::Receiver<()>>, mpsc::Sender<Vec<bool>>),
    Leaf,
}

#[test]
fn func_pool_misuse_inside_its_own_function() {
    let _s = serial();
    let _w = Watchdog::new("func_pool_misuse_inside_its_own_function", 60);
    // The function reaches its own pool through this cell, emptied at the end
    // (a handle kept inside the function would keep the pool alive).
    let cell: Arc<Mutex<Option<FuncPool<Inside>>>> = Arc::new(Mutex::new(None));
    let handled = Arc::new(Mutex::new(Vec::new()));
    let leaves = Count::default();
    let (c, h, l) = (cell.clone(), handled.clone(), leaves.clone());
    let fp = FuncPool::builder()
        .capacity(1)
        .pin_workers(false)
        .thread_name(|i| format!("mu-fpin-{i}"))
        .queue_limit(1)
        .nonblocking(true)
        .panic_handler(move |payload| h.lock().unwrap().push(panic_message(&*payload)))
        .build(move |job: Inside| {
            let me = c.lock().unwrap().clone().expect("the pool is in the cell");
            match job {
                Inside::WaitIdle => me.wait_idle(),
                Inside::Reboot(tx) => tx.send(format!("{:?}", me.reboot())).unwrap(),
                Inside::Fanout(entered, go, tx) => {
                    entered.send(()).unwrap();
                    go.lock().unwrap().recv_timeout(Duration::from_secs(30)).expect("go");
                    tx.send((0..5).map(|_| me.invoke(Inside::Leaf).is_ok()).collect())
                        .unwrap();
                }
                Inside::Leaf => {
                    l.0.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .expect("build");
    *cell.lock().unwrap() = Some(fp.clone());
    let ok = |r: Result<(), SubmitError<Inside>>| assert!(r.is_ok(), "refused");

    // wait_idle inside the function: a task panic, to the panic handler.
    ok(fp.invoke(Inside::WaitIdle));
    fp.wait_idle();
    let messages = handled.lock().unwrap().clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("wait_idle"), "{messages:?}");

    // reboot inside: InsideOwnTask.
    let (tx, rx) = mpsc::channel();
    ok(fp.invoke(Inside::Reboot(tx)));
    assert_eq!(rx.recv_timeout(SOON).ok().as_deref(), Some("Err(InsideOwnTask)"));

    // invoke inside on a full queue: accepted, never blocks.
    let (go_tx, go_rx) = mpsc::channel();
    let (res_tx, res_rx) = mpsc::channel();
    let (entered_tx, entered_rx) = mpsc::channel();
    ok(fp.invoke(Inside::Fanout(entered_tx, Mutex::new(go_rx), res_tx)));
    // Sent from inside the function: its queue place is free by then.
    entered_rx.recv_timeout(SOON).expect("Fanout did not start");
    ok(fp.invoke(Inside::Leaf)); // the one queue place
    match fp.invoke(Inside::Leaf) {
        Err(SubmitError::Full(leaf)) => assert!(matches!(leaf.into_inner(), Inside::Leaf)),
        other => panic!(
            "outside invoke on a full queue: expected Full(Leaf), got {:?}",
            other.err()
        ),
    }
    go_tx.send(()).unwrap();
    assert_eq!(
        res_rx.recv_timeout(SOON).ok(),
        Some(vec![true; 5]),
        "inside invokes refused or blocked"
    );
    fp.wait_idle();
    assert_eq!(leaves.get(), 6);
    cell.lock().unwrap().take();
    fp.shutdown();
    assert_threads_gone("mu-fpin-", "after shutdown");
}
