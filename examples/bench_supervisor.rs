//! Spawn latency and throughput through a Supervisor against a direct
//! spawn from a single-threaded host (issue 18's figures), as a markdown
//! table. `scripts/bench_supervisor.sh` runs it on a release build.
//!
//!     cargo run --release --example bench_supervisor [JOBS] [-- ARGV...]
//!
//! Each job is `/bin/true` (or ARGV) in a new user namespace: what is
//! measured is the cost of the start, not of the program.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nsrun::{Namespace, Spawn, Supervisor};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn job(argv: &[String]) -> Spawn<'static> {
    Spawn::new(argv.to_vec()).namespaces([Namespace::User])
}

/// Busy and total jiffies of all CPUs (/proc/stat's first line).
fn cpu_times() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Median and mean of `d`, in ms.
fn stats(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let mean = d.iter().map(|x| ms(*x)).sum::<f64>() / d.len() as f64;
    (ms(d[d.len() / 2]), mean)
}

/// Time `n` starts (until exec) and start-to-reaped round trips.
fn latency(
    n: usize,
    mut start: impl FnMut() -> nsrun::Result<nsrun::Child>,
) -> Result<(Vec<Duration>, Vec<Duration>), BoxError> {
    let (mut spawn, mut round) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let mut c = start()?;
        spawn.push(t.elapsed());
        let st = c.wait()?;
        round.push(t.elapsed());
        if !st.success() {
            return Err(format!("a job failed: {st:?}").into());
        }
    }
    Ok((spawn, round))
}

fn main() -> Result<(), BoxError> {
    Supervisor::serve_if_helper();
    let mut args = std::env::args().skip(1);
    let jobs: usize = match args.next() {
        Some(n) if n != "--" => n.parse()?,
        _ => 500,
    };
    let mut argv: Vec<String> = args.skip_while(|a| a == "--").collect();
    if argv.is_empty() {
        argv = vec!["/bin/true".into()];
    }
    // Warm both paths (page cache, the helper's first fork).
    for _ in 0..20 {
        job(&argv).spawn()?.wait()?;
    }
    let (d_spawn, d_round) = latency(jobs, || job(&argv).spawn())?;
    let (b0, t0) = cpu_times();
    let t = Instant::now();
    for _ in 0..jobs {
        job(&argv).spawn()?.wait()?;
    }
    let direct_rate = jobs as f64 / t.elapsed().as_secs_f64();
    let (b1, t1) = cpu_times();
    let direct_busy = 100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64;

    let sup = Arc::new(Supervisor::start()?);
    for _ in 0..20 {
        sup.spawn(job(&argv))?.wait()?;
    }
    let (s_spawn, s_round) = latency(jobs, || sup.spawn(job(&argv)))?;

    println!(
        "Spawn of `{}` in a new user namespace, {jobs} jobs, {} cores.",
        argv.join(" "),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!("| path | spawn median (ms) | spawn mean (ms) | spawn+wait median (ms) | spawn+wait mean (ms) |");
    println!("|---|---|---|---|---|");
    for (name, s, r) in [
        ("direct (single-threaded host)", d_spawn, d_round),
        ("through the supervisor", s_spawn, s_round),
    ] {
        let (sm, sa) = stats(s);
        let (rm, ra) = stats(r);
        println!("| {name} | {sm:.3} | {sa:.3} | {rm:.3} | {ra:.3} |");
    }
    println!();
    println!("| callers | jobs/s | CPU busy (all cores) |");
    println!("|---|---|---|");
    println!("| 1, direct (single-threaded host) | {direct_rate:.0} | {direct_busy:.0}% |");
    for callers in [1usize, 2, 8, 32] {
        let (b0, t0) = cpu_times();
        let t = Instant::now();
        let per = jobs.div_ceil(callers);
        let threads: Vec<_> = (0..callers)
            .map(|_| {
                let sup = sup.clone();
                let argv = argv.clone();
                std::thread::spawn(move || -> nsrun::Result<()> {
                    for _ in 0..per {
                        sup.spawn(job(&argv))?.wait()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for th in threads {
            th.join().map_err(|_| "a caller panicked")??;
        }
        let rate = (per * callers) as f64 / t.elapsed().as_secs_f64();
        let (b1, t1) = cpu_times();
        let busy = 100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        println!("| {callers}, supervisor | {rate:.0} | {busy:.0}% |");
    }
    Ok(())
}
