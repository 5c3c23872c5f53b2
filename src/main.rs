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
  nsrun types > nsrun.lua           the API's LuaLS stubs, for an editor

`man`, `completions` and `types` are always these commands: a recipe file
of one of those names runs as `nsrun ./man`.

Logging: -v info, -vv debug, -vvv all; RUST_LOG overrides.

Exit status: the recipe's (see the README); 1 for an error; 141 when standard
output is closed under nsrun (`nsrun recipe.lua | head -1`): nsrun ignores
SIGPIPE, so it ends as quietly as a tool that SIGPIPE kills.")]
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
    /// code in place, and print the ordered plan on stderr (`--plan=json`
    /// for tools). The recipe's own output stays on stdout.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text",
          require_equals = true, value_parser = ["text", "json"])]
    plan: Option<String>,
    /// With --plan: write the plan to FILE instead of stderr.
    #[arg(long, value_name = "FILE", requires = "plan")]
    plan_out: Option<std::path::PathBuf>,
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
    // Started as a Supervisor's helper (issue 18): serve, never return.
    nsrun::Supervisor::serve_if_helper();
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

/// nsrun's own pid (not a forked child's).
static NSRUN_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The parts of std's start-up nsrun relies on.
fn start() {
    // SAFETY: getpid has no preconditions.
    NSRUN_PID.store(
        unsafe { libc::getpid() },
        std::sync::atomic::Ordering::Relaxed,
    );
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
    // bubblewrap's command line: as `nsrun bwrap …`, or under the name
    // `bwrap` (a link), which is how scripts written for bubblewrap call
    // it. Before clap: these options are bubblewrap's, not ours.
    let called = |name: &str| {
        args.first()
            .and_then(|a| std::path::Path::new(a).file_name())
            .is_some_and(|n| n == name)
    };
    if called("bwrap") {
        return shipped_main("nsrun.bwrap", "bwrap", &args[0], &args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "bwrap") {
        return shipped_main("nsrun.bwrap", "bwrap", "nsrun bwrap".as_ref(), &args[2..]);
    }
    // runc's command line, as `nsrun oci …` or under the name `nsrun-oci`
    // (engines take a runtime as the path to one binary).
    if called("nsrun-oci") {
        return shipped_main("nsrun.oci", "nsrun-oci", &args[0], &args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "oci") {
        return shipped_main("nsrun.oci", "nsrun-oci", "nsrun oci".as_ref(), &args[2..]);
    }
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

/// Run a shipped module's main (`nsrun.bwrap`, `nsrun.oci`) with the
/// command line's arguments (bytes as given); `who` prefixes an error
/// that escapes it.
fn shipped_main(
    module: &str,
    who: &str,
    argv0: &std::ffi::OsStr,
    args: &[std::ffi::OsString],
) -> libc::c_int {
    let r = (|| -> mlua::Result<i32> {
        let host = Host::new()?;
        let lua = host.lua();
        exit_on_broken_stdout(lua)?;
        let list = lua.create_table()?;
        for (i, a) in args.iter().enumerate() {
            list.set(i + 1, lua.create_string(a.as_bytes())?)?;
        }
        let require: mlua::Function = lua.globals().get("require")?;
        let m: mlua::Table = require.call(module)?;
        let main: mlua::Function = m.get("main")?;
        main.call((lua.create_string(argv0.as_bytes())?, list))
    })();
    match r {
        Ok(code) => code & 0xff,
        Err(e) => {
            let _ = std::io::stderr()
                .lock()
                .write_all(format!("{who}: {e}\n").as_bytes());
            1
        }
    }
}

fn report(e: &anyhow::Error, verbose: bool) {
    let text = match e.downcast_ref::<RunError>() {
        Some(RunError::Uncaught { message, traceback }) if verbose && !traceback.is_empty() => {
            format!("nsrun: {message}\n{traceback}\n")
        }
        Some(RunError::Uncaught { message, .. }) => format!("nsrun: {message}\n"),
        // RunError's message already names its cause; {:#} would repeat it.
        Some(other) => format!("nsrun: {other}\n"),
        None => format!("nsrun: {e:#}\n"),
    };
    // Not eprintln!, which panics when stderr is a closed pipe.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `nsrun man`, `nsrun completions SHELL` and `nsrun types`. The words
/// are always the commands, whatever files the current directory holds (a
/// recipe of such a name is `./man`): what a command line means must not
/// depend on where it runs.
fn subcommand(cli: &Cli) -> Option<anyhow::Result<i32>> {
    let first = cli.rest.first()?;
    if cli.chunk.is_some() {
        return None;
    }
    // Made in memory, then written: clap_complete panics on a failed write.
    let mut out = Vec::new();
    match first.as_str() {
        "man" => Some((|| {
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            out.extend_from_slice(MAN_EXTRA.as_bytes());
            write_stdout(&out)?;
            Ok(0)
        })()),
        "types" => Some((|| {
            write_stdout(STUBS.as_bytes())?;
            Ok(0)
        })()),
        "completions" => Some((|| {
            let name = cli.rest.get(1).map(String::as_str).unwrap_or("");
            let shell: clap_complete::Shell = name.parse().map_err(|_| {
                anyhow::anyhow!(
                    "completions for which shell? bash, zsh, fish, elvish or powershell (got '{name}')"
                )
            })?;
            clap_complete::generate(shell, &mut with_subcommands(), "nsrun", &mut out);
            write_stdout(&out)?;
            Ok(0)
        })()),
        _ => None,
    }
}

/// The command with the words [`subcommand`] and [`bwrap_main`] take, so
/// that completions offer them (clap parses them as the recipe's name).
fn with_subcommands() -> clap::Command {
    use clap::{Arg, Command};
    Cli::command()
        .subcommand(Command::new("man").about("print the man page (roff)"))
        .subcommand(Command::new("types").about("print the LuaLS stubs of the Lua API"))
        .subcommand(
            Command::new("completions")
                .about("print shell completions")
                .arg(Arg::new("shell").value_parser([
                    "bash",
                    "zsh",
                    "fish",
                    "elvish",
                    "powershell",
                ])),
        )
        .subcommand(
            Command::new("bwrap")
                .about("bubblewrap's command line (nsrun bwrap --help)")
                .arg(
                    Arg::new("args")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                ),
        )
}

/// The LuaLS stubs of the whole API (`nsrun types`).
const STUBS: &str = include_str!("../lua/types/nsrun.lua");

/// The man page's sections beyond the options, in roff.
const MAN_EXTRA: &str = r#".SH COMMANDS
These words are commands wherever nsrun runs (a recipe of such a name is \fB./man\fR):
.TP
\fBnsrun bwrap\fR [\fIOPTIONS\fR...] [\fB\-\-\fR] \fICOMMAND\fR [\fIARGS\fR...]
bubblewrap 0.11's command line (also when nsrun is run under the name \fBbwrap\fR).
.TP
\fBnsrun man\fR, \fBnsrun types\fR, \fBnsrun completions\fR \fISHELL\fR
this page; the LuaLS stubs of the Lua API; shell completions.
.SH "EXIT STATUS"
The recipe's: what it returns (an integer 0\-255, true or false, nothing for 0,
or a status table with an integer code), or the status of the process it waits
for.
.TP
1
an error: the recipe raised one, or nsrun could not run it.
.TP
141
standard output was closed under nsrun (\fBnsrun recipe.lua | head \-1\fR).
.SH ENVIRONMENT
.TP
RUST_LOG
log filter (env_logger syntax); overrides \fB\-v\fR.
.TP
XDG_STATE_HOME
where the prompt keeps its history (\fI$XDG_STATE_HOME/nsrun/history\fR, else
\fI~/.local/state/nsrun/history\fR).
.TP
NO_COLOR
no colours in log lines.
.SH FILES
.TP
\fI/sys/fs/cgroup/.../nsrun\-PID\-N\fR
a sandbox's cgroup while it runs; a later nsrun removes those of an nsrun that is gone.
.TP
\fI/run/netns/NAME\fR
network namespaces kept by \fBnsrun.netns\fR (as \fBip netns\fR).
.SH "THE LUA API"
\fBrequire "nsrun"\fR gives the kernel's parts: \fBunshare\fR, \fBsetns\fR,
\fBclone\fR, \fBfork\fR, \fBexec\fR, \fBspawn\fR/\fBrun\fR (one call for a
whole isolated start), \fBmount\fR, \fBbind\fR, \fBpivot_root\fR,
\fBuid_map\fR/\fBgid_map\fR, \fBsethostname\fR, \fBcgroup\fR, \fBnet\fR
(links, veth, addresses, routes), \fBroot\fR (symlink-safe set-up in a
directory). \fBrequire "nsrun.sandbox"\fR builds a bubblewrap-style sandbox
from one table. \fBnsrun types\fR prints the whole API with its
documentation as LuaLS stubs.
.SH "SEE ALSO"
\fBunshare\fR(1), \fBnsenter\fR(1), \fBbwrap\fR(1), \fBnamespaces\fR(7),
\fBuser_namespaces\fR(7), \fBcgroups\fR(7), \fBseccomp\fR(2)
"#;

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

/// The exit status for a closed standard output: what a shell reports
/// for a process SIGPIPE killed (128 + 13).
const BROKEN_PIPE_STATUS: i32 = 141;

/// Whether fd 1 is a pipe or socket whose reader has gone.
fn stdout_broken() -> bool {
    let mut p = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLERR != 0
}

/// Leave as a tool that SIGPIPE kills would: no message, status 141 (with
/// the plan, under --plan, which has a stream of its own).
fn broken_pipe_exit() -> ! {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != NSRUN_PID.load(std::sync::atomic::Ordering::Relaxed) {
        // A child nsrun forked (ns.fork) leaves without nsrun's teardown.
        // SAFETY: _exit ends the process at once.
        unsafe { libc::_exit(BROKEN_PIPE_STATUS) };
    }
    if nsrun::sys::ops::planning() {
        nsrun::sys::ops::plan_exit(BROKEN_PIPE_STATUS);
    }
    std::process::exit(BROKEN_PIPE_STATUS)
}

/// Write all of `data` to stdout; a closed stdout ends nsrun quietly.
fn write_stdout(data: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(data).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => broken_pipe_exit(),
        r => r,
    }
}

unsafe extern "C" {
    /// C's stdout, which Lua's `print` and `io.write` use.
    #[link_name = "stdout"]
    static C_STDOUT: *mut libc::FILE;
}

/// Lua's `print` and `io.write` ignore a failed write (`print` always,
/// `io.write` unless checked), so a recipe printing into a closed pipe
/// would run on to its end: after each, a stdout that failed because its
/// reader left ends nsrun as SIGPIPE would (status 141).
fn exit_on_broken_stdout(lua: &mlua::Lua) -> mlua::Result<()> {
    let check = |lua: &mlua::Lua, f: mlua::Function| {
        lua.create_function(move |_, args: mlua::MultiValue| {
            let r = f.call::<mlua::MultiValue>(args)?;
            // SAFETY: reading the error flag of C's stdout.
            if unsafe { libc::ferror(C_STDOUT) } != 0 && stdout_broken() {
                broken_pipe_exit();
            }
            Ok(r)
        })
    };
    let g = lua.globals();
    g.set("print", check(lua, g.get("print")?)?)?;
    let io: mlua::Table = g.get("io")?;
    io.set("write", check(lua, io.get("write")?)?)?;
    // `io.stdout:write(…)`: the method all files share.
    let meta: mlua::Table = g
        .get::<mlua::Function>("getmetatable")?
        .call(io.get::<mlua::Value>("stdout")?)?;
    let methods: mlua::Table = meta.get("__index")?;
    methods.set("write", check(lua, methods.get("write")?)?)?;
    Ok(())
}

/// Where `--plan` writes the plan: its format, and the file of
/// `--plan-out` (else stderr).
struct PlanOut {
    json: bool,
    file: std::sync::Mutex<Option<std::fs::File>>,
}

static PLAN_OUT: std::sync::OnceLock<PlanOut> = std::sync::OnceLock::new();

/// Print the steps recorded so far where `--plan` said.
fn emit_plan() {
    let Some(out) = PLAN_OUT.get() else {
        return;
    };
    let steps = nsrun::sys::ops::plan_end();
    let text = format_plan(&steps, out.json);
    let mut file = out.file.lock().unwrap_or_else(|e| e.into_inner());
    let r = match file.as_mut() {
        Some(f) => f.write_all(text.as_bytes()).and_then(|_| f.flush()),
        None => std::io::stderr().lock().write_all(text.as_bytes()),
    };
    // A plan nobody reads any more is not an error of the recipe.
    if let Err(e) = r {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("nsrun: writing the plan: {e}");
        }
    }
}

/// `os.exit` (or a closed stdout) ending a planned run: the plan, then
/// the code.
fn end_planned_run(code: i32) {
    emit_plan();
    std::process::exit(code)
}

fn format_plan(steps: &[nsrun::sys::ops::Step], json: bool) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
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
        let _ = writeln!(o, "{{\"plan\":[{}]}}", items.join(","));
        return o;
    }
    let _ = writeln!(o, "plan: {} operations, none performed", steps.len());
    for (i, s) in steps.iter().enumerate() {
        let _ = writeln!(o, "{:>4}  {:<7} {}", i + 1, s.process, s.call);
    }
    o
}

fn run(cli: &Cli) -> anyhow::Result<i32> {
    if let Some(r) = subcommand(cli) {
        return r;
    }
    if let Some(format) = &cli.plan {
        // Opened first, so a bad path fails before anything runs.
        let file = match &cli.plan_out {
            Some(p) => Some(
                std::fs::File::create(p)
                    .map_err(|e| anyhow::anyhow!("--plan-out {}: {e}", p.display()))?,
            ),
            None => None,
        };
        let _ = PLAN_OUT.set(PlanOut {
            json: format == "json",
            file: std::sync::Mutex::new(file),
        });
        nsrun::sys::ops::set_plan_exit(end_planned_run);
        nsrun::sys::ops::plan_begin();
        let r = run_recipe(cli);
        // The recipe's output before the plan, when both go to one place.
        let _ = std::io::stdout().flush();
        // SAFETY: flushing C's stdout (Lua's print).
        unsafe { libc::fflush(C_STDOUT) };
        emit_plan();
        return r;
    }
    run_recipe(cli)
}

fn run_recipe(cli: &Cli) -> anyhow::Result<i32> {
    let host = Host::new().map_err(RunError::from)?;
    exit_on_broken_stdout(host.lua()).map_err(RunError::from)?;
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
