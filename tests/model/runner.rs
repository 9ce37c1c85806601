//! Running operations: the runner, the checks after each operation and at
//! quiescent points, and the sequential and concurrent segments.

use super::*;

// ---------------------------------------------------------------------------
// Running operations
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Answer {
    Ok,
    Closed,
    Full,
    Timeout,
}

pub(super) fn answer_of<T, F>(result: &Result<T, SubmitError<F>>) -> Answer {
    match result {
        Ok(_) => Answer::Ok,
        Err(SubmitError::Closed(_)) => Answer::Closed,
        Err(SubmitError::Full(_)) => Answer::Full,
        Err(SubmitError::Timeout(_)) => Answer::Timeout,
    }
}

/// The model's state, kept exactly by the sequential parts.
#[derive(Clone, Debug)]
pub(super) struct Model {
    open: bool,
    capacity: usize,
}

/// One thread's view while it runs its operations.
pub(super) struct Runner<'a> {
    env: &'a Arc<Env>,
    /// The pool's open state if no other thread can change it now.
    open: Option<bool>,
    /// Sequential: the model to check against and update after each op.
    model: Option<&'a mut Model>,
    kept: Vec<(usize, JoinHandle<usize>)>,
    /// Every successful tune of this thread, in order.
    tunes: Vec<usize>,
    where_: String,
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

impl Runner<'_> {
    fn pool(&self) -> &Pool {
        &self.env.pool
    }

    /// Checks a submit's answer against what the pool's state allows.
    fn check_answer(&self, answer: Answer, timeout: bool, id: usize) -> Result<(), String> {
        let limited = !matches!(self.env.config.queue, QueueLimit::Unbounded);
        let nonblocking = matches!(self.env.config.queue, QueueLimit::Nonblocking(_));
        let allowed = match answer {
            Answer::Ok => self.open != Some(false),
            Answer::Closed => self.open != Some(true),
            // A closed pool answers `Closed` before it looks for room.
            Answer::Full => nonblocking && !timeout && self.open != Some(false),
            Answer::Timeout => limited && timeout && self.open != Some(false),
        };
        ensure!(
            allowed,
            "{}: submit of task {id} answered {answer:?} (pool known open: {:?}, queue {:?}, with timeout: {timeout})",
            self.where_,
            self.open,
            self.env.config.queue
        );
        Ok(())
    }

    fn submit(&mut self, node: Node, timeout: Option<u64>) -> Result<(), String> {
        let (id, task) = make_task(self.env, node);
        let wrapped = move || {
            task();
        };
        let result = match timeout {
            None => self.pool().submit(wrapped),
            Some(ms) => self.pool().submit_timeout(wrapped, Duration::from_millis(ms)),
        };
        let answer = answer_of(&result);
        match result {
            Ok(()) => self.env.answer(id, ACCEPTED),
            Err(error) => {
                self.env.answer(id, REFUSED);
                run_returned(error.into_inner());
            }
        }
        self.check_answer(answer, timeout.is_some(), id)
    }

    fn spawn(&mut self, node: Node, keep: bool) -> Result<(), String> {
        let (id, task) = make_task(self.env, node);
        let result = self.pool().spawn(task);
        let answer = answer_of(&result);
        match result {
            Ok(handle) => {
                self.env.answer(id, ACCEPTED);
                if keep {
                    self.kept.push((id, handle));
                }
            }
            Err(error) => {
                self.env.answer(id, REFUSED);
                let task = error.into_inner();
                run_returned(move || {
                    task();
                });
            }
        }
        self.check_answer(answer, false, id)
    }

    fn cancel_kept(&mut self) {
        for (id, handle) in &self.kept {
            if handle.cancel() {
                self.env.records[*id].cancel_won.fetch_add(1, SeqCst);
            }
        }
    }

    fn join_kept(&mut self) {
        for (id, handle) in self.kept.drain(..) {
            let result = joined(handle.join());
            self.env
                .joins
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id, result));
        }
    }

    fn tune(&mut self, capacity: usize) -> Result<(), String> {
        let max = self.env.config.max_capacity;
        let before = self.pool().capacity();
        let result = self.pool().tune(capacity);
        match (&result, capacity) {
            (Ok(()), c) if (1..=max).contains(&c) => self.tunes.push(c),
            (Err(TuneError::Zero), 0) => {}
            (Err(TuneError::AboveMax { requested, max: m }), c) if c > max && *requested == c && *m == max => {}
            _ => {
                return Err(format!(
                    "{}: tune({capacity}) with max {max} returned {result:?}",
                    self.where_
                ))
            }
        }
        if let Some(model) = self.model.as_deref_mut() {
            if result.is_ok() {
                model.capacity = capacity;
            }
            let now = self.env.pool.capacity();
            ensure!(
                self.env.capacity_agrees(now, model.capacity, true),
                "{}: tune({capacity}) returned {result:?}; capacity went {before} -> {now}, model says {}",
                self.where_,
                model.capacity
            );
        }
        Ok(())
    }

    fn closed_now(&mut self, idle: bool) -> Result<(), String> {
        if let Some(model) = self.model.as_deref_mut() {
            model.open = false;
            self.open = Some(false);
            ensure!(self.env.pool.is_closed(), "{}: pool open after a shutdown", self.where_);
            if idle {
                // A shutdown that finished has joined every worker thread.
                let live = self.env.pool.stats().live_workers;
                ensure!(live == 0, "{}: {live} live workers after the shutdown", self.where_);
                let model = model.clone();
                check_quiescent(self.env, &model, true).map_err(|e| format!("{}: {e}", self.where_))?;
            }
        }
        Ok(())
    }

    fn run(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Submit(node) => self.submit(node, None)?,
            Op::SubmitMany(count) => {
                for _ in 0..count {
                    let leaf = Node {
                        panics: false,
                        slow: true,
                        in_place: false,
                        children: Vec::new(),
                    };
                    self.submit(leaf, None)?;
                }
            }
            Op::SubmitTimeout(node, ms) => self.submit(node, Some(ms))?,
            Op::Spawn { task, keep } => self.spawn(task, keep)?,
            Op::JoinHandles => self.join_kept(),
            Op::CancelHandles => self.cancel_kept(),
            Op::SpawnCancel(task) => {
                self.spawn(task, true)?;
                self.cancel_kept();
            }
            Op::Tune(capacity) => self.tune(capacity)?,
            Op::WaitIdle => {
                self.pool().wait_idle();
                if let Some(model) = self.model.as_deref() {
                    let model = model.clone();
                    check_quiescent(self.env, &model, true).map_err(|e| format!("{}: {e}", self.where_))?;
                }
            }
            Op::Stats => check_invariants(self.env).map_err(|e| format!("{}: {e}", self.where_))?,
            Op::Shutdown => {
                self.pool().shutdown();
                self.closed_now(true)?;
            }
            Op::ShutdownTimeout(ms) => {
                let result = self.pool().shutdown_timeout(Duration::from_millis(ms));
                self.closed_now(result.is_ok())?;
            }
            Op::ShutdownNow { run_mask } => {
                let unrun = self.pool().shutdown_now();
                self.env.handed_back.fetch_add(unrun.len() as u64, SeqCst);
                for (i, task) in unrun.into_iter().enumerate() {
                    if run_mask & (1 << (i % 32)) != 0 {
                        with_context(Context::HandedBack, || {
                            let _ = panic::catch_unwind(AssertUnwindSafe(|| task.run()));
                        });
                    } else {
                        with_context(Context::HandedBack, || drop(task));
                    }
                }
                self.closed_now(true)?;
            }
            Op::ShutdownBackground => {
                self.pool().shutdown_background();
                // Queued tasks still run: not idle, threads still there.
                self.closed_now(false)?;
            }
            Op::Autoscale(on) => {
                let max = self.env.config.max_capacity;
                if on {
                    self.env.autoscaled.store(true, SeqCst);
                }
                let result = self.pool().set_autoscale(on.then(|| Autoscale::new(1, max)));
                ensure!(
                    result.is_ok(),
                    "{}: set_autoscale(1..={max}) returned {result:?}",
                    self.where_
                );
            }
            Op::Reboot => {
                let result = self.pool().reboot();
                ensure!(result.is_ok(), "{}: reboot returned {result:?}", self.where_);
                if let Some(model) = self.model.as_deref_mut() {
                    model.open = true;
                    self.open = Some(true);
                    let (closed, capacity) = (self.env.pool.is_closed(), self.env.pool.capacity());
                    ensure!(!closed, "{}: pool closed after reboot", self.where_);
                    ensure!(
                        self.env.capacity_agrees(capacity, model.capacity, true),
                        "{}: capacity {capacity} after reboot, model says {}",
                        self.where_,
                        model.capacity
                    );
                }
            }
        }
        Ok(())
    }

    fn run_all(&mut self, ops: Vec<Op>) -> Result<(), String> {
        let prefix = std::mem::take(&mut self.where_);
        for (i, op) in ops.into_iter().enumerate() {
            self.where_ = format!("{prefix} op {i} {op:?}");
            self.env.set_current(&prefix, &self.where_);
            self.run(op)?;
        }
        self.where_ = prefix;
        self.env.set_current(&self.where_, "joining its kept handles");
        self.join_kept();
        self.env.set_current(&self.where_, "done");
        Ok(())
    }
}

/// What must hold in any snapshot, busy or not.
pub(super) fn check_invariants(env: &Env) -> Result<(), String> {
    let s = env.pool.stats();
    ensure!(s.completed <= s.submitted, "stats: completed > submitted: {s:?}");
    ensure!(s.busy_workers <= s.live_workers, "stats: busy > live: {s:?}");
    ensure!(s.live_workers <= s.max_capacity, "stats: live > max_capacity: {s:?}");
    ensure!(
        (1..=s.max_capacity).contains(&s.capacity) && s.max_capacity == env.config.max_capacity,
        "stats: capacity out of range: {s:?}"
    );
    Ok(())
}

/// The model's checks at a point where nothing runs and no operation is in
/// flight. `idle`: the pool must be idle already (no `wait_idle` first).
pub(super) fn check_quiescent(env: &Env, model: &Model, idle: bool) -> Result<(), String> {
    if !idle {
        env.pool.wait_idle();
    }
    let s = env.pool.stats();
    check_invariants(env)?;
    let mut bad = String::new();
    let (mut accepted, mut refused, mut in_pool, mut handed_back, mut panicked) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut ran_by_hand, mut cancelled) = (0u64, 0u64);
    for (id, r) in env.records[..env.next_id.load(SeqCst)].iter().enumerate() {
        let (outcome, answers) = (r.outcome.load(SeqCst), r.answers.load(SeqCst));
        let runs = [
            r.in_pool.load(SeqCst),
            r.returned.load(SeqCst),
            r.handed_back_ran.load(SeqCst),
            r.dropped.load(SeqCst),
            r.stray.load(SeqCst),
            r.cancelled_dropped.load(SeqCst),
        ];
        let [pool_runs, returned, hb_ran, dropped, stray, cancel_dropped] = runs;
        let cancel_won = r.cancel_won.load(SeqCst);
        // A won cancellation means the task never ran; only such a task is
        // dropped by the pool.
        let cancel_ok = match cancel_won {
            0 => cancel_dropped == 0,
            1 => pool_runs + hb_ran == 0 && dropped + cancel_dropped == 1,
            _ => false,
        };
        let ok = match outcome {
            ACCEPTED => {
                answers == 1
                    && pool_runs + hb_ran + dropped + cancel_dropped == 1
                    && returned == 0
                    && stray == 0
                    && cancel_ok
            }
            REFUSED => answers == 1 && returned == 1 && pool_runs + hb_ran + dropped + stray + cancel_dropped == 0,
            // Allocated but never submitted (a child of a task dropped
            // unrun): no answer, no run.
            _ => answers == 0 && runs.iter().sum::<u32>() == 0,
        };
        if !ok && bad.len() < 800 {
            let _ = write!(
                bad,
                " [task {id}: outcome {outcome} answered {answers}x; in pool {pool_runs}, returned {returned}, \
                 handed back and ran {hb_ran}, dropped {dropped}, stray {stray}, \
                 cancelled {cancel_won}x and dropped by the pool {cancel_dropped}]"
            );
        }
        accepted += u64::from(outcome == ACCEPTED);
        refused += u64::from(outcome == REFUSED);
        in_pool += u64::from(pool_runs);
        handed_back += u64::from(hb_ran + dropped);
        ran_by_hand += u64::from(hb_ran);
        cancelled += u64::from(cancel_dropped);
        if r.panics.load(SeqCst) != 0 {
            panicked += u64::from(pool_runs);
        }
    }
    ensure!(bad.is_empty(), "tasks not accounted for exactly once:{bad}\n{s:?}");
    let given_back = env.handed_back.load(SeqCst);
    ensure!(
        given_back == handed_back,
        "shutdown_now handed back {given_back} tasks, the records say {handed_back}"
    );
    ensure!(
        s.submitted == accepted,
        "stats.submitted {} != accepted {accepted}: {s:?}",
        s.submitted
    );
    ensure!(
        s.completed == in_pool + ran_by_hand,
        "stats.completed {} != ran in pool {in_pool} + handed back and run by hand {ran_by_hand}: {s:?}",
        s.completed
    );
    ensure!(
        s.withdrawn == given_back - ran_by_hand,
        "stats.withdrawn {} != handed back {given_back} - run by hand {ran_by_hand}: {s:?}",
        s.withdrawn
    );
    ensure!(
        s.cancelled == cancelled,
        "stats.cancelled {} != cancelled tasks the pool dropped {cancelled}: {s:?}",
        s.cancelled
    );
    ensure!(
        s.completed + s.withdrawn + s.cancelled + s.queued as u64 + s.busy_workers as u64 == s.submitted,
        "completed + withdrawn + cancelled + queued + busy != submitted at a quiescent point: {s:?}"
    );
    ensure!(s.queued == 0, "stats.queued {} at a quiescent point: {s:?}", s.queued);
    ensure!(
        s.panicked == panicked,
        "stats.panicked {} != panicking tasks run in the pool {panicked}: {s:?}",
        s.panicked
    );
    ensure!(
        s.rejected == refused,
        "stats.rejected {} != refused submits {refused}: {s:?}",
        s.rejected
    );
    ensure!(
        env.capacity_agrees(s.capacity, model.capacity, false)
            && env.capacity_agrees(env.pool.capacity(), model.capacity, false),
        "capacity {} (stats {}) != model {}",
        env.pool.capacity(),
        s.capacity,
        model.capacity
    );
    ensure!(
        env.pool.is_closed() != model.open,
        "pool closed: {}, model says open: {}",
        env.pool.is_closed(),
        model.open
    );
    let errors = env.errors.lock().unwrap_or_else(|e| e.into_inner());
    ensure!(errors.is_empty(), "violations inside tasks: {errors:?}");
    for (id, result) in env.joins.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let r = &env.records[*id];
        let ran = r.in_pool.load(SeqCst) + r.handed_back_ran.load(SeqCst) == 1;
        let expected = if r.dropped.load(SeqCst) + r.cancel_won.load(SeqCst) >= 1 {
            Joined::Cancelled
        } else if ran && r.panics.load(SeqCst) != 0 {
            Joined::Panicked
        } else if ran {
            Joined::Value(*id)
        } else {
            Joined::Other("<task never ran>".into())
        };
        ensure!(
            *result == expected,
            "join of task {id} returned {result:?}, expected {expected:?}"
        );
    }
    Ok(())
}

pub(super) fn build_pool(config: &Config) -> Pool {
    let mut builder = Pool::builder()
        .capacity(config.capacity)
        .max_capacity(config.max_capacity)
        .prealloc(config.prealloc)
        .pin_workers(false)
        .thread_name(|i| format!("model-{i}"))
        .panic_handler(|_| {});
    if let Some(ms) = config.keep_alive_ms {
        builder = builder.keep_alive(Duration::from_millis(ms));
    }
    match config.queue {
        QueueLimit::Unbounded => {}
        QueueLimit::Blocking(limit) => builder = builder.queue_limit(limit),
        QueueLimit::Nonblocking(limit) => builder = builder.queue_limit(limit).nonblocking(true),
    }
    builder.build().expect("build the pool")
}

/// Runs a case to the end; `Err` describes the first violation.
pub(super) fn execute(case: Case, show_env: mpsc::Sender<Arc<Env>>) -> Result<(), String> {
    quiet_intentional_panics();
    let env = Arc::new(Env {
        pool: build_pool(&case.config),
        config: case.config.clone(),
        records: (0..MAX_IDS).map(|_| Record::default()).collect(),
        next_id: AtomicUsize::new(0),
        handed_back: AtomicU64::new(0),
        joins: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        current: Mutex::new(BTreeMap::new()),
        autoscaled: AtomicBool::new(false),
    });
    let _ = show_env.send(env.clone());
    let result = run_segments(&env, case);
    if result.is_err() {
        // Best effort, so a failing case (and each shrink step) leaves no
        // threads behind: queued tasks hold the `Env`, which holds the pool.
        let _ = env.pool.shutdown_timeout(Duration::from_secs(1));
    }
    result
}

pub(super) fn run_segments(env: &Arc<Env>, case: Case) -> Result<(), String> {
    let mut model = Model {
        open: true,
        capacity: case.config.capacity,
    };
    for (n, segment) in case.segments.into_iter().enumerate() {
        match segment {
            Segment::Seq(ops) => {
                env.set_current("main", &format!("segment {n} (sequential)"));
                let mut runner = Runner {
                    env,
                    open: Some(model.open),
                    model: Some(&mut model),
                    kept: Vec::new(),
                    tunes: Vec::new(),
                    where_: format!("segment {n} (sequential)"),
                };
                runner.run_all(ops)?;
            }
            Segment::Par(threads) => {
                env.set_current("main", &format!("segment {n}: joining its op threads"));
                run_concurrent(env, &mut model, n, threads)?;
            }
        }
        env.set_current("main", &format!("after segment {n}: wait_idle and checks"));
        check_quiescent(env, &model, false).map_err(|e| format!("after segment {n}: {e}"))?;
    }
    env.set_current("main", "the final shutdown");
    env.pool.shutdown();
    model.open = false;
    let live = env.pool.stats().live_workers;
    ensure!(live == 0, "{live} live workers after the final shutdown");
    check_quiescent(env, &model, true).map_err(|e| format!("after the final shutdown: {e}"))
}

pub(super) fn run_concurrent(env: &Arc<Env>, model: &mut Model, n: usize, threads: Vec<Vec<Op>>) -> Result<(), String> {
    let closes = threads.iter().flatten().any(Op::closes);
    let reboots = threads.iter().flatten().any(|op| matches!(op, Op::Reboot));
    let open = match (model.open, closes, reboots) {
        (true, false, _) => Some(true),
        (false, _, false) => Some(false),
        _ => None,
    };
    let barrier = Arc::new(Barrier::new(threads.len()));
    let handles: Vec<_> = threads
        .into_iter()
        .enumerate()
        .map(|(t, ops)| {
            let (env, barrier) = (env.clone(), barrier.clone());
            thread::Builder::new()
                .name(format!("model-op-{t}"))
                .spawn(move || {
                    barrier.wait();
                    let mut runner = Runner {
                        env: &env,
                        open,
                        model: None,
                        kept: Vec::new(),
                        tunes: Vec::new(),
                        where_: format!("segment {n} thread {t}"),
                    };
                    runner.run_all(ops).map(|()| runner.tunes.last().copied())
                })
                .expect("spawn an op thread")
        })
        .collect();
    let mut last_tunes = Vec::new();
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(last)) => last_tunes.extend(last),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some(format!("segment {n}: an op thread panicked"))),
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let closed = env.pool.is_closed();
    if let Some(open) = open {
        ensure!(
            closed != open,
            "after segment {n}: pool closed {closed}, expected open {open}"
        );
    }
    // Only shutdowns: closed at the end; only reboots: open; both: either.
    let consistent = match (closes, reboots) {
        (true, false) => closed,
        (false, true) => !closed,
        _ => true,
    };
    ensure!(
        consistent,
        "after segment {n}: pool closed {closed} (a thread shut down: {closes}, a thread rebooted: {reboots})"
    );
    model.open = !closed;
    if !env.autoscaled.load(SeqCst) {
        // Slots lent by tasks still in `block_in_place` come back when they
        // finish: the model keeps the capacity without them.
        env.pool.wait_idle();
    }
    let capacity = env.pool.capacity();
    if last_tunes.is_empty() {
        ensure!(
            env.capacity_agrees(capacity, model.capacity, false),
            "after segment {n}: capacity {capacity} but no thread tuned (model {})",
            model.capacity
        );
    } else {
        ensure!(
            last_tunes
                .iter()
                .any(|&tuned| env.capacity_agrees(capacity, tuned, false)),
            "after segment {n}: capacity {capacity} is no thread's last tune {last_tunes:?}"
        );
    }
    model.capacity = capacity;
    Ok(())
}
