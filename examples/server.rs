//! A tokio program (multi-threaded runtime) that runs sandboxed jobs
//! concurrently through an nsrun Supervisor: each job in its own user,
//! pid, uts, ipc and mount namespaces, with its own host name, output and
//! exit status, awaited without a thread per job.
//!
//!     cargo run --example server --features tokio [JOBS] [--sleep SECS] [--direct]
//!
//! It checks every job's output and status and exits 0 when all are
//! right. A tokio runtime has threads, so `Spawn::spawn` refuses there
//! ("cannot fork a process that has N threads"; `--direct` shows it): the
//! supervisor, started before the runtime, does the forks. `--sleep`
//! makes every job sleep first (to watch them, or kill the server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nsrun::{Namespace, Spawn, Stdio, Supervisor};
use tokio::io::AsyncReadExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    // This program is also the supervisor's binary: when started as the
    // helper, this serves and never returns. It must come first.
    Supervisor::serve_if_helper();
    let (mut jobs, mut sleep, mut direct) = (200, 0, false);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--direct" => direct = true,
            "--sleep" => sleep = args.next().ok_or("--sleep SECS")?.parse()?,
            n => jobs = n.parse()?,
        }
    }
    if direct {
        return direct_spawn();
    }
    // Started before the runtime, from the main thread, so the helper also
    // gets a parent-death signal. (It may be started later, from any
    // thread, too: it is a fresh program either way.)
    let sup = Arc::new(Supervisor::start()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let t = Instant::now();
    let bad = rt.block_on(run_jobs(sup, jobs, sleep))?;
    println!(
        "{jobs} jobs in {:.0} ms, {bad} wrong",
        t.elapsed().as_secs_f64() * 1000.0
    );
    std::process::exit(if bad == 0 { 0 } else { 1 })
}

/// One job: a shell in fresh namespaces that names its host and exits
/// with a code of its own.
async fn job(sup: Arc<Supervisor>, i: usize, sleep: u32) -> Result<(String, i32), BoxError> {
    // A request is a short round trip to the supervisor (it answers once
    // the job has started): off the async threads.
    let mut child = tokio::task::spawn_blocking(move || {
        sup.spawn(
            Spawn::new([
                "/bin/sh",
                "-c",
                "[ $2 = 0 ] || sleep $2; read h < /proc/sys/kernel/hostname; \
                 echo \"job $1 on $h\"; exit $(($1 % 7))",
                "sh",
                &i.to_string(),
                &sleep.to_string(),
            ])
            .namespaces([
                Namespace::User,
                Namespace::Pid,
                Namespace::Uts,
                Namespace::Ipc,
                Namespace::Mount,
            ])
            .hostname(format!("job{i}"))
            .stdout(Stdio::Pipe)
            .timeout(Duration::from_secs(60)),
        )
    })
    .await??;
    let mut out = String::new();
    if let Some(pipe) = child.stdout_async() {
        pipe?.read_to_string(&mut out).await?;
    }
    let status = child.wait_async().await?;
    Ok((out, status.shell_code()))
}

/// Run `n` jobs at once; the number whose output or status is wrong.
async fn run_jobs(sup: Arc<Supervisor>, n: usize, sleep: u32) -> Result<usize, BoxError> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let sup = sup.clone();
        set.spawn(async move { (i, job(sup, i, sleep).await) });
    }
    let mut bad = 0;
    while let Some(r) = set.join_next().await {
        let (i, r) = r?;
        let want = (format!("job {i} on job{i}\n"), (i % 7) as i32);
        match r {
            Ok(got) if got == want => {}
            Ok(got) => {
                eprintln!("job {i}: got {got:?}, want {want:?}");
                bad += 1;
            }
            Err(e) => {
                eprintln!("job {i}: {e}");
                bad += 1;
            }
        }
    }
    Ok(bad)
}

/// The same job started directly from a runtime's thread: refused.
fn direct_spawn() -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(async {
        tokio::task::spawn_blocking(|| {
            Spawn::new(["/bin/true"])
                .namespaces([Namespace::User])
                .spawn()
        })
        .await
    })?;
    match r {
        Ok(_) => Err("a direct spawn from a multi-threaded runtime was not refused".into()),
        Err(e) => Err(format!("direct spawn: {e}").into()),
    }
}
