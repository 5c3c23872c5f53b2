//! The cargo-fuzz target's driver (`fuzz/driver/api.rs`) on stable, so the
//! normal test suite runs it: over the committed seed corpus
//! (`fuzz/corpus/api/seed-*`) and thousands of pseudo-random inputs, half
//! of them mutated seeds. Allowed per call: a result or an error with a
//! message; per input: no panic, no hang, and the process as it was.

#[path = "../fuzz/driver/api.rs"]
mod driver;

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driver::Report;

/// The driver checks the whole process (fds, umask, mounts) after each
/// input, so no two of these tests may run at once.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An input that takes longer than this is taken for a hang (they take
/// milliseconds).
const HANG: Duration = Duration::from_secs(30);

/// Random inputs per run; about 10 ms each in a debug build.
const RANDOM_INPUTS: usize = 2000;

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs inputs one after another with a watchdog: a hang ends the test
/// process with the input that hung, rather than stalling the suite.
struct Runner {
    current: Arc<Mutex<String>>,
    tick: Option<mpsc::Sender<()>>,
    watchdog: Option<std::thread::JoinHandle<()>>,
    total: Report,
    inputs: usize,
    slowest: (Duration, String),
}

impl Runner {
    fn new() -> Runner {
        let current = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<()>();
        let seen = current.clone();
        let watchdog = std::thread::spawn(move || loop {
            match rx.recv_timeout(HANG) {
                Ok(()) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    eprintln!(
                        "fuzz driver: an input ran for over {HANG:?} (a hang): {}",
                        seen.lock().unwrap_or_else(|e| e.into_inner())
                    );
                    std::process::exit(101);
                }
            }
        });
        Runner {
            current,
            tick: Some(tx),
            watchdog: Some(watchdog),
            total: Report::default(),
            inputs: 0,
            slowest: (Duration::ZERO, String::new()),
        }
    }

    #[track_caller]
    fn run(&mut self, name: &str, data: &[u8]) {
        *self.current.lock().unwrap() = format!("{name} (input {})", hex(data));
        let _ = self.tick.as_ref().unwrap().send(());
        let start = Instant::now();
        let r = std::panic::catch_unwind(|| driver::run(data));
        let took = start.elapsed();
        match r {
            Ok(Ok(report)) => self.total.add(&report),
            Ok(Err(v)) => panic!("{name}: {v}\ninput: {}", hex(data)),
            Err(_) => panic!(
                "{name}: nsrun panicked (message above)\ninput: {}",
                hex(data)
            ),
        }
        self.inputs += 1;
        if took > self.slowest.0 {
            self.slowest = (took, name.to_string());
        }
    }

    fn finish(mut self, what: &str) -> Report {
        drop(self.tick.take());
        let _ = self.watchdog.take().unwrap().join();
        let t = &self.total;
        eprintln!(
            "{what}: {} inputs, {} calls ({} returned, {} raised an error with a message), \
             {} operations planned, slowest input {:?} ({})",
            self.inputs, t.calls, t.ok, t.err, t.planned_ops, self.slowest.0, self.slowest.1
        );
        self.total
    }
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/api");
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("seed-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// xorshift64*: the same inputs on every run, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn seed_corpus() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seeds = seeds();
    assert!(seeds.len() >= 5, "only {} seeds", seeds.len());
    let mut r = Runner::new();
    for (name, data) in &seeds {
        r.run(name, data);
    }
    let total = r.finish("seed corpus");
    // The seeds are picked to start things: each starter gets past its
    // validation at least once.
    for t in [
        "ns.spawn",
        "ns.run",
        "sandbox.run",
        "sandbox.spawn",
        "ns.fork",
    ] {
        let (calls, ok) = total.per_target.get(t).copied().unwrap_or_default();
        assert!(ok > 0, "the seeds never start {t} ({calls} calls)");
    }
}

#[test]
fn pseudo_random_inputs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seeds = seeds();
    let mut rng = Rng(0x6e73_7275_6e21_0008);
    let mut r = Runner::new();
    for i in 0..RANDOM_INPUTS {
        let data: Vec<u8> = if i % 2 == 0 || seeds.is_empty() {
            let len = rng.below(700);
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            // A seed with a few bytes changed, inserted or cut: near the
            // calls that do something.
            let mut d = seeds[rng.below(seeds.len())].1.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(d.len() + 1);
                match rng.below(3) {
                    0 if at < d.len() => d[at] = rng.next() as u8,
                    1 => d.insert(at, rng.next() as u8),
                    _ if at < d.len() => {
                        d.remove(at);
                    }
                    _ => d.push(rng.next() as u8),
                }
            }
            d
        };
        r.run(&format!("random input {i}"), &data);
    }
    let total = r.finish("pseudo-random inputs");
    // Every function of the API was called, and most got past argument
    // checking at least once: the driver reaches the code behind them.
    let targets = driver::targets();
    let never: Vec<&String> = targets
        .iter()
        .filter(|t| !total.per_target.contains_key(*t))
        .collect();
    assert!(never.is_empty(), "never called: {never:?}");
    let returned = targets
        .iter()
        .filter(|t| total.per_target.get(*t).is_some_and(|c| c.1 > 0))
        .count();
    let methods = total
        .per_target
        .iter()
        .filter(|(k, c)| k.starts_with(':') && c.1 > 0)
        .count();
    eprintln!(
        "{returned} of {} functions returned at least once; {methods} methods did",
        targets.len()
    );
    assert!(
        returned * 10 >= targets.len() * 7,
        "only {returned} of {} functions ever returned: {:?}",
        targets.len(),
        total.per_target
    );
    assert!(methods >= 5, "{:?}", total.per_target);
    assert!(total.err > 0 && total.ok > 0);
}
