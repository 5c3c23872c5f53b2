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

/// CPU time used so far by this process, its reaped children and, when
/// given, the supervisor and the jobs it reaped: what the benchmark
/// itself keeps the cores busy with, whatever else the machine runs.
fn cpu_used(sup: Option<i32>) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let mut total = Duration::ZERO;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage fills the struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut ru) };
        total += tv(ru.ru_utime) + tv(ru.ru_stime);
    }
    if let Some(pid) = sup {
        // The supervisor and its workers (its children that are not
        // jobs): utime, stime, cutime, cstime, fields 14-17 of stat.
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        let ticks = |p: &str| -> u64 {
            let s = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            match s.rsplit_once(')') {
                Some((head, r)) if p == pid.to_string() || head.ends_with("(nsrun-super") => r
                    .split_whitespace()
                    .skip(11)
                    .take(4)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum(),
                _ => 0,
            }
        };
        let all: u64 = std::iter::once(pid.to_string())
            .chain(kids.split_whitespace().map(String::from))
            .map(|p| ticks(&p))
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        total += Duration::from_nanos(all * 1_000_000_000 / hz);
    }
    total
}

/// `used` CPU time over `wall` on `cores` cores, in percent of all.
fn busy(used: Duration, wall: Duration, cores: usize) -> f64 {
    100.0 * used.as_secs_f64() / (wall.as_secs_f64() * cores as f64)
}

/// Median, mean and 90th percentile of `d`, in ms.
fn stats(mut d: Vec<Duration>) -> (f64, f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    let mean = d.iter().map(|x| ms(*x)).sum::<f64>() / d.len() as f64;
    (ms(d[d.len() / 2]), mean, ms(d[d.len() * 9 / 10]))
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
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let c0 = cpu_used(None);
    let t = Instant::now();
    for _ in 0..jobs {
        job(&argv).spawn()?.wait()?;
    }
    let direct_rate = jobs as f64 / t.elapsed().as_secs_f64();
    let direct_busy = busy(cpu_used(None) - c0, t.elapsed(), cores);

    let sup = Arc::new(Supervisor::start()?);
    for _ in 0..20 {
        sup.spawn(job(&argv))?.wait()?;
    }
    let (s_spawn, s_round) = latency(jobs, || sup.spawn(job(&argv)))?;

    println!(
        "Spawn of `{}` in a new user namespace, {jobs} jobs, {} cores.",
        argv.join(" "),
        cores
    );
    println!();
    println!("| path | spawn median (ms) | mean | p90 | spawn+wait median (ms) | mean | p90 |");
    println!("|---|---|---|---|---|---|---|");
    for (name, s, r) in [
        ("direct (single-threaded host)", d_spawn, d_round),
        ("through the supervisor", s_spawn, s_round),
    ] {
        let (sm, sa, s9) = stats(s);
        let (rm, ra, r9) = stats(r);
        println!("| {name} | {sm:.3} | {sa:.3} | {s9:.3} | {rm:.3} | {ra:.3} | {r9:.3} |");
    }
    println!();
    println!("| callers | jobs/s | cores kept busy (host, supervisor, jobs) |");
    println!("|---|---|---|");
    println!("| 1, direct (single-threaded host) | {direct_rate:.0} | {direct_busy:.0}% |");
    for callers in [1usize, 2, 8, 32] {
        let c0 = cpu_used(Some(sup.pid()));
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
        let busy = busy(cpu_used(Some(sup.pid())) - c0, t.elapsed(), cores);
        println!("| {callers}, supervisor | {rate:.0} | {busy:.0}% |");
    }
    Ok(())
}
