//! The `nsrun` command: run a Lua recipe that builds a sandbox.
//!
//! `main` is C's: std's start-up (`lang_start`) reads /proc/self/maps to
//! place a stack guard and sets up an alternate signal stack, some fifteen
//! system calls that cost nsrun about 70 µs of every start (7% of a bare
//! process start on the benchmark machine). What of it nsrun needs is done
//! in [`start`].
#![no_main]

use std::io::{IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;

use clap::{CommandFactory, Parser};
use nsrun::{Host, RunError};

/// Prototype and run Linux isolation setups from Lua recipes.
#[derive(Parser, Debug)]
#[command(name = "nsrun", version, about, long_about = None, after_help = "\
Examples:
  nsrun examples/hello.lua          run a recipe
  nsrun -e 'print(require\"nsrun\".getpid())'
  echo 'return 3' | nsrun -          read the recipe from stdin
  nsrun --check recipe.lua          compile only
  nsrun --trace recipe.lua          log every kernel operation as it happens
  nsrun -i                          interactive prompt (also: nsrun alone on a terminal)
  nsrun man > nsrun.1               the man page
  nsrun completions bash            shell completions (bash, zsh, fish, elvish, powershell)

Logging: -v info, -vv debug, -vvv all; RUST_LOG overrides.")]
struct Cli {
    /// Run CHUNK instead of a recipe file; the positional arguments become `...`.
    #[arg(short = 'e', value_name = "CHUNK")]
    chunk: Option<String>,
    /// Compile the recipe and report syntax errors without running it.
    #[arg(long)]
    check: bool,
    /// Log every kernel operation (in child processes too) on stderr.
    #[arg(long)]
    trace: bool,
    /// Perform no kernel operation: record them, run the recipe's child
    /// code in place, and print the ordered plan (`--plan=json` for tools).
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text",
          require_equals = true, value_parser = ["text", "json"])]
    plan: Option<String>,
    /// Interactive prompt with `ns` preloaded.
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// More logging (repeat for more); also shows tracebacks of errors.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// The recipe (or `-` for standard input) and its arguments. Everything
    /// after the recipe belongs to it, as with `lua script.lua -v`.
    #[arg(
        value_name = "RECIPE [ARGS]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    rest: Vec<String>,
}

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = if cli.trace {
        format!("{level},nsrun::ops=trace")
    } else {
        level.to_string()
    };
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter));
    b.format(|f, r| {
        if r.target() == "nsrun::ops" {
            writeln!(f, "nsrun[{}]: {}", std::process::id(), r.args())
        } else {
            writeln!(
                f,
                "nsrun[{}] {}: {}",
                std::process::id(),
                r.level(),
                r.args()
            )
        }
    });
    // Log to a private copy of stderr: a sandbox's stderr may be turned into
    // a pipe the recipe captures, and the trace of its set-up must not end
    // up there. The copy is close-on-exec, so programs never see it.
    // SAFETY: F_DUPFD_CLOEXEC returns a new fd or -1.
    let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 10) };
    if fd >= 0 {
        if cli.trace {
            nsrun::sys::ops::set_trace_fd(fd);
        }
        // SAFETY: fd is a fresh descriptor that we own.
        let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // The logger's lock must not be held by a process that died of
        // SIGPIPE in its write: a supervisor sharing its memory would wait
        // on it for good.
        b.target(env_logger::Target::Pipe(Box::new(
            nsrun::sys::ops::TraceWriter(f),
        )));
    }
    b.init();
}

// musl's malloc maps and unmaps memory over and over for the thousands of
// small objects a Lua state makes and frees: with dlmalloc, `nsrun -e ''`
// takes 0.66 ms instead of 0.86 and `require "nsrun.sandbox"` 0.28 ms less.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: heap::Dlmalloc = heap::Dlmalloc::new();

#[cfg(target_env = "musl")]
mod heap {
    //! dlmalloc behind a spin lock rather than the crate's pthread mutex,
    //! whose two calls per allocation cost nsrun's single thread 6% of its
    //! start-up.
    use std::alloc::{GlobalAlloc, Layout};
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub struct Dlmalloc {
        busy: AtomicBool,
        heap: UnsafeCell<dlmalloc::Dlmalloc>,
    }

    // SAFETY: `heap` is only reached with `busy` held.
    unsafe impl Sync for Dlmalloc {}

    impl Dlmalloc {
        pub const fn new() -> Dlmalloc {
            Dlmalloc {
                busy: AtomicBool::new(false),
                heap: UnsafeCell::new(dlmalloc::Dlmalloc::new()),
            }
        }

        fn with<T>(&self, f: impl FnOnce(&mut dlmalloc::Dlmalloc) -> T) -> T {
            while self.busy.swap(true, Ordering::Acquire) {
                std::hint::spin_loop();
            }
            // SAFETY: we hold `busy`.
            let r = f(unsafe { &mut *self.heap.get() });
            self.busy.store(false, Ordering::Release);
            r
        }
    }

    // SAFETY: dlmalloc's functions, called as its own GlobalDlmalloc does.
    unsafe impl GlobalAlloc for Dlmalloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            self.with(|h| unsafe { h.malloc(l.size(), l.align()) })
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            self.with(|h| unsafe { h.free(p, l.size(), l.align()) })
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            self.with(|h| unsafe { h.calloc(l.size(), l.align()) })
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            self.with(|h| unsafe { h.realloc(p, l.size(), l.align(), new) })
        }
    }
}

#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    start();
    // From main's own arguments: std::env::args is filled by std's start-up,
    // or on glibc by an init hook that musl does not have.
    let args: Vec<std::ffi::OsString> = (0..argc.max(0) as usize)
        .map(|i| {
            // SAFETY: argv holds argc valid C strings.
            let s = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(s.to_bytes()).to_owned()
        })
        .collect();
    // An unwinding panic must not cross into C; the hook has printed it.
    let code = std::panic::catch_unwind(|| nsrun_main(args)).unwrap_or(101);
    // lang_start would flush stdout after main; std::process::exit does.
    let _ = std::io::stdout().flush();
    code
}

/// The parts of std's start-up nsrun relies on.
fn start() {
    // Standard streams that are closed become /dev/null, so no file the
    // recipe opens can take fd 1 and get a program's output.
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: three valid pollfds, no waiting.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if n > 0 {
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
            // SAFETY: open returns the lowest free fd, which is p.fd.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd != p.fd {
                std::process::abort();
            }
        }
    }
    // Writes to a pipe whose reader left fail with EPIPE instead of killing
    // nsrun (programs get the default back at exec).
    // SAFETY: ignoring a signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

fn nsrun_main(args: Vec<std::ffi::OsString>) -> libc::c_int {
    let cli = Cli::parse_from(args);
    init_logging(&cli);
    match run(&cli) {
        Ok(code) => code & 0xff,
        Err(e) => {
            report(&e, cli.verbose > 0);
            1
        }
    }
}

fn report(e: &anyhow::Error, verbose: bool) {
    match e.downcast_ref::<RunError>() {
        Some(RunError::Uncaught { message, traceback }) => {
            eprintln!("nsrun: {message}");
            if verbose && !traceback.is_empty() {
                eprintln!("{traceback}");
            }
        }
        // RunError's message already names its cause; {:#} would repeat it.
        Some(other) => eprintln!("nsrun: {other}"),
        None => eprintln!("nsrun: {e:#}"),
    }
}

/// `nsrun man` and `nsrun completions SHELL`, unless a recipe file of that
/// name exists.
fn subcommand(cli: &Cli) -> Option<anyhow::Result<i32>> {
    let first = cli.rest.first()?;
    if cli.chunk.is_some() || std::path::Path::new(first).exists() {
        return None;
    }
    let mut out = std::io::stdout();
    match first.as_str() {
        "man" => Some(
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map(|_| 0)
                .map_err(Into::into),
        ),
        "completions" => Some((|| {
            let name = cli.rest.get(1).map(String::as_str).unwrap_or("");
            let shell: clap_complete::Shell = name.parse().map_err(|_| {
                anyhow::anyhow!(
                    "completions for which shell? bash, zsh, fish, elvish or powershell (got '{name}')"
                )
            })?;
            clap_complete::generate(shell, &mut Cli::command(), "nsrun", &mut out);
            Ok(0)
        })()),
        _ => None,
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn print_plan(steps: &[nsrun::sys::ops::Step], json: bool) {
    if json {
        let items: Vec<String> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{{\"step\":{},\"process\":{},\"call\":{}}}",
                    i + 1,
                    json_str(&s.process),
                    json_str(&s.call)
                )
            })
            .collect();
        println!("{{\"plan\":[{}]}}", items.join(","));
        return;
    }
    println!("plan: {} operations, none performed", steps.len());
    for (i, s) in steps.iter().enumerate() {
        println!("{:>4}  {:<7} {}", i + 1, s.process, s.call);
    }
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    if let Some(r) = subcommand(cli) {
        return r;
    }
    if let Some(format) = &cli.plan {
        nsrun::sys::ops::plan_begin();
        let r = run_recipe(cli);
        let steps = nsrun::sys::ops::plan_end();
        print_plan(&steps, format == "json");
        return r;
    }
    run_recipe(cli)
}

fn run_recipe(cli: &Cli) -> anyhow::Result<i32> {
    let host = Host::new().map_err(RunError::from)?;
    if cli.interactive
        || (cli.chunk.is_none() && cli.rest.is_empty() && std::io::stdin().is_terminal())
    {
        host.repl()?;
        return Ok(0);
    }
    if let Some(chunk) = &cli.chunk {
        let args: Vec<&str> = cli.rest.iter().map(String::as_str).collect();
        if cli.check {
            host.check(chunk.as_bytes(), "=(command line)")?;
            return Ok(0);
        }
        return Ok(host.run_chunk(chunk.as_bytes(), "=(command line)", &args)?);
    }
    let Some((recipe, args)) = cli.rest.split_first() else {
        anyhow::bail!(
            "no recipe given: nsrun RECIPE [ARGS]..., nsrun -e CHUNK, or nsrun - (see --help)"
        );
    };
    if recipe == "-" {
        let mut src = Vec::new();
        std::io::stdin().read_to_end(&mut src)?;
        if cli.check {
            host.check(&src, "=stdin")?;
            return Ok(0);
        }
        return Ok(host.run_chunk(&src, "=stdin", args)?);
    }
    if cli.check {
        let src = std::fs::read(recipe).map_err(|source| RunError::Read {
            path: recipe.clone(),
            source,
        })?;
        host.check(&src, &format!("@{recipe}"))?;
        return Ok(0);
    }
    Ok(host.run_file(recipe, args)?)
}
