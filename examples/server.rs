//! A tokio program (multi-threaded runtime) that runs sandboxed jobs
//! concurrently through an nsrun Supervisor: each job in its own user,
//! pid, uts, ipc and mount namespaces, with its own host name, output and
//! exit status, awaited without a thread per job.
//!
//!     cargo run --example server --features tokio [JOBS]
//!
//! It checks every job's output and status and exits 0 when all are
//! right. A tokio runtime has threads, so `Spawn::spawn` would refuse
//! here ("cannot fork a process that has N threads"): the supervisor,
//! started before the runtime, does the forks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nsrun::{Namespace, Spawn, Stdio, Supervisor};
use tokio::io::AsyncReadExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    // This program is also the supervisor's binary: when started as the
    // helper, this serves and never returns. It must come first.
    Supervisor::serve_if_helper();
    let jobs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200,
    };
    // Started before the runtime, from the main thread, so the helper also
    // gets a parent-death signal. (It may be started later, from any
    // thread, too: it is a fresh program either way.)
    let sup = Arc::new(Supervisor::start()?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let t = Instant::now();
    let bad = rt.block_on(run_jobs(sup, jobs))?;
    println!(
        "{jobs} jobs in {:.0} ms, {bad} wrong",
        t.elapsed().as_secs_f64() * 1000.0
    );
    std::process::exit(if bad == 0 { 0 } else { 1 })
}

/// One job: a shell in fresh namespaces that names its host and exits
/// with a code of its own.
async fn job(sup: Arc<Supervisor>, i: usize) -> Result<(String, i32), BoxError> {
    // A request is a short round trip to the supervisor (it answers once
    // the job has started): off the async threads.
    let mut child = tokio::task::spawn_blocking(move || {
        sup.spawn(
            Spawn::new([
                "/bin/sh",
                "-c",
                "read h < /proc/sys/kernel/hostname; echo \"job $1 on $h\"; exit $(($1 % 7))",
                "sh",
                &i.to_string(),
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
async fn run_jobs(sup: Arc<Supervisor>, n: usize) -> Result<usize, BoxError> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let sup = sup.clone();
        set.spawn(async move { (i, job(sup, i).await) });
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
