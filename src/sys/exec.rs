//! Replacing this process with a program: the exec that [`super::process`]
//! and spawn's main process end in, prepared ahead so that a child sharing
//! our memory allocates nothing on its way there.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::RawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;

use super::ops;
use super::process::{default_sigpipe, flush_stdio};
use crate::error::{Context, Error, Result};

/// Options of [`exec`].
#[derive(Clone, Debug, Default)]
pub struct ExecOpts {
    /// The whole environment, replacing ours.
    pub env: Option<Vec<(OsString, OsString)>>,
    /// Change to this directory first.
    pub cwd: Option<OsString>,
    /// What the program sees as `argv[0]`.
    pub argv0: Option<OsString>,
    /// Set `PWD` to the directory the program starts in, whichever it is
    /// by then (bubblewrap does, after its own choice of directory).
    pub pwd: bool,
}

/// Room for `PWD=` and a path as long as getcwd(2) gives.
const PWD_CAP: usize = 4 + 4096 + 1;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cstr(s: &[u8], what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{what} contains a NUL byte")))
}

/// Replace this process with `argv`, searching `PATH` (the new
/// environment's when one is given). Returns only with an error.
/// Only the standard streams reach the program: the fds the recipe (Lua's
/// `io.open`, handles) or nsrun opened are marked close-on-exec first,
/// which changes nothing for us should the exec fail.
///
/// A failed exec gives back what it changed on the way (the working
/// directory, SIGPIPE's disposition, the close-on-exec flags), so the
/// recipe goes on as it was: a SIGPIPE left at its default would kill
/// nsrun at the next write to a closed pipe instead of raising.
pub fn exec<S: AsRef<OsStr>>(argv: &[S], opts: &ExecOpts) -> Error {
    let p = match Prepared::new(argv, opts) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if ops::planning() {
        return p.exec();
    }
    let undo = match Undo::take(p.cwd.is_some()) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let marked = match undo.inheritable.is_some() {
        true => {
            undo.mark_cloexec();
            Ok(())
        }
        false => super::init::close_all_but(&[], &[], true),
    };
    let e = match marked {
        Ok(()) => p.exec(),
        Err(e) => e,
    };
    undo.restore();
    e
}

/// What [`exec`] changes before execve(2), to put back if it fails.
struct Undo {
    /// The working directory (O_PATH), when the exec changes it.
    cwd: Option<std::os::fd::OwnedFd>,
    sigpipe: libc::sigaction,
    /// Fds from 3 up without close-on-exec; `None` when /proc/self/fd
    /// could not be listed (then they stay marked: the exec goes on).
    inheritable: Option<Vec<RawFd>>,
}

impl Undo {
    fn take(chdir: bool) -> Result<Undo> {
        let cwd = match chdir {
            true => Some(
                nix::fcntl::open(
                    ".",
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .op(|| {
                    "exec: open the working directory (to return to it should the exec fail)".into()
                })?,
            ),
            false => None,
        };
        // SAFETY: querying a disposition into a zeroed struct.
        let sigpipe = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old);
            old
        };
        let trace = ops::trace_fd();
        let inheritable = std::fs::read_dir("/proc/self/fd").ok().map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<RawFd>().ok())
                .filter(|fd| *fd >= 3 && Some(*fd) != trace)
                // SAFETY: F_GETFD only reads the flags (the directory's own
                // fd, closed by now, fails it).
                .filter(|fd| {
                    let f = unsafe { libc::fcntl(*fd, libc::F_GETFD) };
                    f >= 0 && f & libc::FD_CLOEXEC == 0
                })
                .collect()
        });
        Ok(Undo {
            cwd,
            sigpipe,
            inheritable,
        })
    }

    fn mark_cloexec(&self) {
        for fd in self.inheritable.iter().flatten() {
            // SAFETY: setting a flag on an fd that is open.
            unsafe { libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }

    fn restore(self) {
        if let Some(dir) = &self.cwd {
            let _ = nix::unistd::fchdir(dir);
        }
        // SAFETY: putting back the disposition read in take().
        unsafe { libc::sigaction(libc::SIGPIPE, &self.sigpipe, std::ptr::null_mut()) };
        for fd in self.inheritable.iter().flatten() {
            // SAFETY: clearing the flag mark_cloexec set.
            unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) };
        }
    }
}

/// An exec made ready ahead: every string converted and every PATH
/// candidate spelled out, so a freshly forked child allocates nothing
/// (each heap page it wrote would be copied on write).
#[derive(Debug)]
pub struct Prepared {
    prog: OsString,
    candidates: Vec<CString>,
    argv: Vec<CString>,
    /// Owns what `env_ptrs` points into.
    #[allow(dead_code)]
    env: Vec<CString>,
    /// NULL-terminated pointers into `argv` and `env` (the CStrings' heap
    /// buffers do not move with the Vecs): execve(2) takes these, and
    /// making them in the child would allocate there.
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    cwd: Option<OsString>,
    /// `PWD=…`, filled in the child by getcwd(2) right before the exec
    /// (no allocation there); `env_ptrs` points at it.
    pwd: Option<Box<std::cell::UnsafeCell<[u8; PWD_CAP]>>>,
}

impl Prepared {
    /// Convert `argv` and the options; fails on empty argv or NUL bytes.
    pub fn new<S: AsRef<OsStr>>(argv: &[S], opts: &ExecOpts) -> Result<Prepared> {
        let Some(prog) = argv.first().map(AsRef::as_ref) else {
            return Err(Error::Invalid("exec needs a program: argv is empty".into()));
        };
        let mut cargv = Vec::with_capacity(argv.len());
        cargv.push(cstr(
            opts.argv0.as_deref().unwrap_or(prog).as_bytes(),
            "argv[0]",
        )?);
        for a in &argv[1..] {
            cargv.push(cstr(a.as_ref().as_bytes(), "an argument")?);
        }
        let env: Vec<CString> = match &opts.env {
            Some(vars) => vars
                .iter()
                .map(|(k, v)| {
                    let mut b = k.as_bytes().to_vec();
                    b.push(b'=');
                    b.extend_from_slice(v.as_bytes());
                    cstr(&b, "an environment variable")
                })
                .collect::<Result<_>>()?,
            None => std::env::vars_os()
                .map(|(k, v)| {
                    let mut b = k.into_vec();
                    b.push(b'=');
                    b.extend_from_slice(v.as_bytes());
                    cstr(&b, "an environment variable")
                })
                .collect::<Result<_>>()?,
        };
        let mut env = env;
        let pwd = opts.pwd.then(|| {
            env.retain(|e| !e.as_bytes().starts_with(b"PWD="));
            let mut b = [0u8; PWD_CAP];
            b[..5].copy_from_slice(b"PWD=/");
            Box::new(std::cell::UnsafeCell::new(b))
        });
        let candidates = if prog.as_bytes().contains(&b'/') {
            vec![cstr(prog.as_bytes(), "the program")?]
        } else {
            let path: OsString = match &opts.env {
                Some(vars) => vars
                    .iter()
                    .find(|(k, _)| k == "PATH")
                    .map(|(_, v)| v.into())
                    .unwrap_or_else(|| DEFAULT_PATH.into()),
                None => std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            };
            path.as_bytes()
                .split(|b| *b == b':')
                .map(|dir| {
                    let dir = if dir.is_empty() { &b"."[..] } else { dir };
                    let mut full = dir.to_vec();
                    full.push(b'/');
                    full.extend_from_slice(prog.as_bytes());
                    cstr(&full, "the program path")
                })
                .collect::<Result<_>>()?
        };
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let mut env_ptrs: Vec<*const libc::c_char> = ptrs(&env);
        if let Some(b) = &pwd {
            env_ptrs.insert(env_ptrs.len() - 1, b.get().cast());
        }
        Ok(Prepared {
            prog: prog.to_os_string(),
            candidates,
            argv_ptrs: ptrs(&cargv),
            env_ptrs,
            pwd,
            argv: cargv,
            env,
            cwd: opts.cwd.clone(),
        })
    }

    /// Exec it; returns only with the error that stopped it. Under
    /// `--plan` it records the exec and returns [`Error::Planned`].
    pub fn exec(&self) -> Error {
        if ops::planning() {
            return self.exec_ready();
        }
        if let Err(e) = self.enter_cwd() {
            return e;
        }
        default_sigpipe();
        self.exec_ready()
    }

    /// Change to the working directory, and check that it lies below our
    /// root: a directory reached through an fd (`/proc/self/fd/N`) or
    /// moved away meanwhile can lie outside it, which the kernel shows
    /// by an "(unreachable)" path.
    pub fn enter_cwd(&self) -> Result<()> {
        self.enter_cwd_only()?;
        if let Some(b) = &self.pwd {
            if ops::planning() {
                return Ok(());
            }
            let p = b.get().cast::<u8>();
            // SAFETY: getcwd(2) into our own buffer past "PWD=", at most its
            // size less that; nothing else reads the buffer until execve.
            // A failure (a path too long, a directory gone) leaves "PWD=/".
            let n = unsafe { libc::syscall(libc::SYS_getcwd, p.add(4), PWD_CAP - 5) };
            if n <= 0 {
                // SAFETY: as above; "/" and its NUL fit.
                unsafe {
                    *p.add(4) = b'/';
                    *p.add(5) = 0;
                }
            }
        }
        Ok(())
    }

    /// Whether the program can be found and run (what `exec` would try
    /// first), without running it: an OCI `create` says so before its
    /// process waits for `start`.
    pub fn check_found(&self) -> Result<()> {
        if ops::planning() {
            return Ok(());
        }
        let mut denied = false;
        for c in &self.candidates {
            // SAFETY: access(2) of a NUL-terminated path.
            if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
                // SAFETY: as above, a stat to tell a directory.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                if unsafe { libc::stat(c.as_ptr(), &mut st) } == 0
                    && st.st_mode & libc::S_IFMT == libc::S_IFREG
                {
                    return Ok(());
                }
            }
            denied |= Errno::last() == Errno::EACCES;
        }
        let prog = std::path::Path::new(&self.prog).display();
        match (self.candidates.len(), denied) {
            (_, true) => Err(Error::sys(format!("exec {prog}"), Errno::EACCES)),
            (1, _) if self.prog.as_bytes().contains(&b'/') => Err(Error::Invalid(format!(
                "exec {prog}: no such file or directory"
            ))),
            _ => Err(Error::Invalid(format!(
                "exec: \"{prog}\": executable file not found in $PATH"
            ))),
        }
    }

    fn enter_cwd_only(&self) -> Result<()> {
        let Some(dir) = &self.cwd else {
            return Ok(());
        };
        let dir = std::path::Path::new(dir);
        if ops::record(|| format!("chdir({dir:?})")) {
            return Ok(());
        }
        ops::chdir(dir).op(|| format!("chdir {}", dir.display()))?;
        let mut buf = [0u8; 4096];
        // SAFETY: getcwd(2) into a buffer of that size.
        let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        if n > 0 && buf[0] == b'/' {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "cwd '{}' lies outside the process's root directory (reached through an fd or a moved mount?)",
            dir.display()
        )))
    }

    /// execve(2) with nothing before it: the working directory and signal
    /// dispositions are the caller's business ([`Prepared::enter_cwd`],
    /// [`default_sigpipe`]), so a seccomp filter installed just before
    /// need allow nothing of ours but the exec.
    pub fn exec_ready(&self) -> Error {
        self.exec_ready_diagnosing(true)
    }

    /// [`Prepared::exec_ready`]; with `diagnose`, an ENOENT for a file that
    /// is there is looked into (open and read it): its ELF interpreter or
    /// `#!` interpreter is what is missing. Give false under a seccomp
    /// filter that may kill on those calls.
    pub fn exec_ready_diagnosing(&self, diagnose: bool) -> Error {
        if ops::record(|| format!("execve({:?}, {:?})", self.prog, self.argv)) {
            return Error::Planned;
        }
        flush_stdio();
        let mut seen_eacces = false;
        let single = self.candidates.len() == 1 && self.prog.as_bytes().contains(&b'/');
        let prog = std::path::Path::new(&self.prog).display();
        let fail = |c: &CString, e: Errno| {
            if e == Errno::ENOENT && diagnose {
                if let Some(interp) = missing_interpreter(c) {
                    return Error::sys(
                        format!(
                            "exec {prog}: its interpreter {} is missing",
                            std::path::Path::new(OsStr::from_bytes(&interp)).display()
                        ),
                        e,
                    );
                }
            }
            Error::sys(format!("exec {prog}"), e)
        };
        for c in &self.candidates {
            match ops::execve(c, &self.argv, &self.argv_ptrs, &self.env_ptrs) {
                Err(e) if single => return fail(c, e),
                Err(Errno::ENOENT) if diagnose && missing_interpreter(c).is_some() => {
                    return fail(c, Errno::ENOENT)
                }
                Err(
                    Errno::ENOENT
                    | Errno::ENOTDIR
                    | Errno::ESTALE
                    | Errno::ENODEV
                    | Errno::ETIMEDOUT,
                ) => {}
                Err(Errno::EACCES) => seen_eacces = true,
                Err(e) => return Error::sys(format!("exec {prog}"), e),
                Ok(()) => {}
            }
        }
        let errno = if seen_eacces {
            Errno::EACCES
        } else {
            Errno::ENOENT
        };
        Error::sys(format!("exec {prog}"), errno)
    }
}

/// Why execve(2) said ENOENT for `path` although it opens: the
/// interpreter it names (PT_INTERP of an ELF file, or a `#!` line) is not
/// there. None when the file does not open or names none.
fn missing_interpreter(path: &CString) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path.as_bytes()));
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 256];
    let n = f.read(&mut head).ok()?;
    let head = &head[..n];
    let interp = if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|b| *b == b'\n').next()?;
        let line = line.trim_ascii_start();
        line.split(|b| *b == b' ' || *b == b'\t').next()?.to_vec()
    } else {
        let (off, size) = elf_interp(head, &mut f)?;
        let mut buf = vec![0u8; size.min(4096)];
        f.seek(SeekFrom::Start(off)).ok()?;
        f.read_exact(&mut buf).ok()?;
        buf.split(|b| *b == 0).next()?.to_vec()
    };
    let exists = std::fs::metadata(std::ffi::OsStr::from_bytes(&interp)).is_ok();
    (!interp.is_empty() && !exists).then_some(interp)
}

/// The file offset and size of an ELF file's PT_INTERP segment.
fn elf_interp(head: &[u8], f: &mut std::fs::File) -> Option<(u64, usize)> {
    use std::io::{Read, Seek, SeekFrom};
    const PT_INTERP: u32 = 3;
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[5] != 1 {
        return None; // not ELF, or big-endian: nothing to say
    }
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let wide = head[4] == 2;
    let (phoff, phentsize, phnum) = if wide {
        (
            u64_at(head, 0x20)?,
            u16_at(head, 0x36)?,
            u16_at(head, 0x38)?,
        )
    } else {
        (
            u64::from(u32_at(head, 0x1c)?),
            u16_at(head, 0x2a)?,
            u16_at(head, 0x2c)?,
        )
    };
    let mut ph = vec![0u8; usize::from(phentsize) * usize::from(phnum.min(64))];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut ph).ok()?;
    ph.chunks(usize::from(phentsize).max(1)).find_map(|e| {
        (u32_at(e, 0)? == PT_INTERP).then_some(())?;
        Some(if wide {
            (u64_at(e, 8)?, u64_at(e, 32)? as usize)
        } else {
            (u64::from(u32_at(e, 4)?), u32_at(e, 16)? as usize)
        })
    })
}
