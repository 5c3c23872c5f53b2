//! `--plan` performs nothing (Lua's own `os` and `io` included), prints its
//! plan on a stream of its own, walks the steps `--trace` shows a real run
//! take, and nsrun leaves quietly when its stdout is closed.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::As;

/// `nsrun` as `as_`, from the run directory `dir`.
fn command(as_: As, dir: &Path) -> Command {
    let mut c = match as_ {
        As::Root => Command::new(common::binary(as_)),
        As::User => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(common::binary(as_));
            c
        }
    };
    c.current_dir(dir)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE");
    c
}

// ---------------------------------------------------------------------------
// (a) Lua's os and io under --plan.

both!(
    /// Every call of Lua's `os` and `io` that would change the system is a
    /// step of the plan and answers as a success; the run directory is as
    /// it was; a planned child reads EOF (not nsrun's stdin) and its
    /// `os.exit` ends only its part; the recipe's `os.exit` ends the run
    /// with its code, the plan printed.
    fn lua_os_and_io_are_planned(as_) {
        let recipe = r#"
            local ns = require "nsrun"
            assert(os.remove("keep.txt") == true)
            assert(os.rename("keep.txt", "moved.txt") == true)
            local f = assert(io.open("written.txt", "w"))
            assert(f:write("data"))
            f:close()
            local ok, how, code = os.execute("touch executed.txt")
            assert(ok == true and how == "exit" and code == 0, tostring(how))
            local p = assert(io.popen("touch popened.txt"))
            assert(p:read("a") == "")
            p:close()
            local name = os.tmpname()
            io.output("output.txt")
            io.write("swallowed")
            io.output(io.stdout)
            local r = ns.run{argv = {"touch", "ran.txt"}}
            assert(r.stdout == "" and r.stderr == "", "planned pipes: " .. tostring(r.stdout))
            local c = ns.spawn{fn = function()
                local s = io.read("a")
                os.exit(#s == 0 and 5 or 6)
            end, stdin = "pipe"}
            c.stdin:write("to nobody")
            c.stdin:close()
            print("child " .. c:wait().code)
            io.stdout:flush()
            os.exit(3)
            print("not reached")"#;
        let d = common::nsrun(as_)
            .file("r.lua", recipe.as_bytes())
            .file("keep.txt", b"keep")
            .stdin(b"nsrun's own input")
            .args(&["--plan", "r.lua"])
            .run();
        d.assert_code(3);
        assert_eq!(d.stdout, "child 5\n", "{}", d.report());
        for step in [
            r#"parent  os.remove("keep.txt")"#,
            r#"parent  os.rename("keep.txt", "moved.txt")"#,
            r#"parent  io.open("written.txt", "w")"#,
            r#"parent  os.execute("touch executed.txt")"#,
            r#"parent  io.popen("touch popened.txt", "r")"#,
            r#"parent  os.tmpname()"#,
            r#"parent  io.output("output.txt")"#,
            r#"child   execve("touch", ["touch", "ran.txt"])"#,
            r#"child   os.exit(5)"#,
            r#"parent  os.exit(3)"#,
        ] {
            d.stderr_has(step);
        }
        assert!(d.stderr.starts_with("plan: "), "{}", d.report());
        let mut names: Vec<String> = std::fs::read_dir(d.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["keep.txt", "r.lua", "testlib.lua"], "{}", d.report());
        assert_eq!(std::fs::read(d.path("keep.txt")).unwrap(), b"keep");
    }
);

both!(
    /// The shipped netns module plans: `add` (a child that waits on its
    /// stdin) and `delete` (os.remove) leave the directory as it was.
    fn netns_add_and_delete_plan(as_) {
        let recipe = r#"
            local netns = require "nsrun.netns"
            netns.dir = os.getenv("NSRUN_TEST_DIR") .. "/netns"
            netns.add("blue")
            netns.delete("blue")
            print("planned")"#;
        let d = common::nsrun(as_)
            .file("r.lua", recipe.as_bytes())
            .args(&["--plan", "r.lua"])
            .run();
        d.success();
        assert_eq!(d.stdout, "planned\n");
        d.stderr_has("/netns/blue\")");
        d.stderr_has("parent  os.remove(");
        assert!(!d.path("netns").exists(), "{}", d.report());
    }
);

// ---------------------------------------------------------------------------
// (b) The plan's own stream.

/// A JSON value, as much as the plan needs.
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

/// Parse all of `s` as one JSON value (RFC 8259), or say where it fails.
fn parse_json(s: &str) -> Result<Json, String> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && b" \t\r\n".contains(&self.b[self.i]) {
                self.i += 1;
            }
        }
        fn fail<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("{what} at byte {}", self.i))
        }
        fn eat(&mut self, lit: &str) -> Result<(), String> {
            if self.b[self.i..].starts_with(lit.as_bytes()) {
                self.i += lit.len();
                Ok(())
            } else {
                self.fail(&format!("expected {lit}"))
            }
        }
        fn string(&mut self) -> Result<String, String> {
            self.eat("\"")?;
            let mut out = Vec::new();
            loop {
                let Some(&c) = self.b.get(self.i) else {
                    return self.fail("unterminated string");
                };
                self.i += 1;
                match c {
                    b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                    b'\\' => {
                        let Some(&e) = self.b.get(self.i) else {
                            return self.fail("bad escape");
                        };
                        self.i += 1;
                        match e {
                            b'"' | b'\\' | b'/' => out.push(e),
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'u' => {
                                let hex = std::str::from_utf8(&self.b[self.i..self.i + 4])
                                    .map_err(|e| e.to_string())?;
                                let n = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                self.i += 4;
                                let ch = char::from_u32(n).unwrap_or('\u{fffd}');
                                out.extend(ch.to_string().as_bytes());
                            }
                            _ => return self.fail("bad escape"),
                        }
                    }
                    c if c < 0x20 => return self.fail("control character in string"),
                    c => out.push(c),
                }
            }
        }
        fn value(&mut self) -> Result<Json, String> {
            self.ws();
            let v = match self.b.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = BTreeMap::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                    } else {
                        loop {
                            self.ws();
                            let k = self.string()?;
                            self.ws();
                            self.eat(":")?;
                            m.insert(k, self.value()?);
                            self.ws();
                            if self.b.get(self.i) == Some(&b',') {
                                self.i += 1;
                            } else {
                                self.eat("}")?;
                                break;
                            }
                        }
                    }
                    Json::Obj(m)
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut v = Vec::new();
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                    } else {
                        loop {
                            v.push(self.value()?);
                            self.ws();
                            if self.b.get(self.i) == Some(&b',') {
                                self.i += 1;
                            } else {
                                self.eat("]")?;
                                break;
                            }
                        }
                    }
                    Json::Arr(v)
                }
                Some(b'"') => Json::Str(self.string()?),
                Some(b't') => self.eat("true").map(|_| Json::Bool(true))?,
                Some(b'f') => self.eat("false").map(|_| Json::Bool(false))?,
                Some(b'n') => self.eat("null").map(|_| Json::Null)?,
                Some(c) if *c == b'-' || c.is_ascii_digit() => {
                    let start = self.i;
                    while self.i < self.b.len() && b"+-.eE0123456789".contains(&self.b[self.i]) {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.b[start..self.i]).unwrap();
                    Json::Num(t.parse().map_err(|_| format!("bad number {t}"))?)
                }
                _ => return self.fail("expected a value"),
            };
            Ok(v)
        }
    }
    let mut p = P {
        b: s.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return p.fail("trailing data");
    }
    Ok(v)
}

/// The steps of a parsed `--plan=json`: (process, call), checking the
/// numbering.
fn json_steps(v: &Json) -> Vec<(String, String)> {
    let Json::Obj(top) = v else {
        panic!("not an object: {v:?}")
    };
    let Some(Json::Arr(steps)) = top.get("plan") else {
        panic!("no plan array: {v:?}")
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let Json::Obj(s) = s else {
                panic!("step {s:?}")
            };
            assert_eq!(s.get("step"), Some(&Json::Num((i + 1) as f64)));
            match (s.get("process"), s.get("call")) {
                (Some(Json::Str(p)), Some(Json::Str(c))) => (p.clone(), c.clone()),
                _ => panic!("step {s:?}"),
            }
        })
        .collect()
}

const JSON_RECIPE: &str = r#"
    local ns = require "nsrun"
    print("recipe output \"quoted\"\tand tabbed")
    local r = ns.run{argv = {"printf", "a\nb"}, namespaces = "user,uts", hostname = "x\"y"}
    print("code " .. r.code)"#;

both!(
    /// `--plan=json` goes to stderr (or `--plan-out FILE`) and parses as
    /// JSON, while the recipe's output has stdout to itself.
    fn plan_json_has_its_own_stream(as_) {
        let d = common::nsrun(as_)
            .file("r.lua", JSON_RECIPE.as_bytes())
            .args(&["--plan=json", "r.lua"])
            .run();
        d.success();
        assert_eq!(d.stdout, "recipe output \"quoted\"\tand tabbed\ncode 0\n", "{}", d.report());
        let v = parse_json(d.stderr.trim_end()).unwrap_or_else(|e| panic!("{e}\n{}", d.report()));
        let steps = json_steps(&v);
        assert!(
            steps.contains(&("child".into(), r#"sethostname("x\"y")"#.into())),
            "{steps:?}"
        );
        assert!(
            steps.contains(&("child".into(), r#"execve("printf", ["printf", "a\nb"])"#.into())),
            "{steps:?}"
        );

        let d = common::nsrun(as_)
            .file("r.lua", JSON_RECIPE.as_bytes())
            .args(&["--plan=json", "--plan-out", "plan.json", "r.lua"])
            .run();
        d.success();
        assert_eq!(d.stderr, "", "{}", d.report());
        assert!(d.stdout.ends_with("code 0\n"), "{}", d.report());
        let text = std::fs::read_to_string(d.path("plan.json")).unwrap();
        assert_eq!(json_steps(&parse_json(text.trim_end()).unwrap()), steps);

        // A plan-out that cannot be written fails before the recipe runs.
        let d = common::nsrun(as_)
            .file("r.lua", JSON_RECIPE.as_bytes())
            .args(&["--plan", "--plan-out", "no/such/dir/plan", "r.lua"])
            .run();
        d.assert_code(1).stderr_has("--plan-out no/such/dir/plan: No such file");
        assert_eq!(d.stdout, "");
    }
);

#[test]
fn plan_out_needs_plan() {
    let out = Command::new(env!("CARGO_BIN_EXE_nsrun"))
        .args(["--plan-out", "/dev/null", "-e", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plan"));
}

// ---------------------------------------------------------------------------
// (c) A closed stdout.

/// Run nsrun with `args`, read one line of its stdout, close it, and
/// return (status, that line, its stderr).
fn head_1(as_: As, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let dir = common::run_dir(as_);
    let mut child = command(as_, dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The reader leaves, as `head -1` does.
    let status = child.wait().unwrap();
    (status, line, errs.join().unwrap())
}

both!(
    /// `nsrun … | head -1` ends quietly with 141 (no panic, no message,
    /// no running to the end), whether Lua prints or nsrun does.
    fn closed_stdout_ends_quietly(as_) {
        for chunk in [
            "for i = 1, 1e7 do print(i) end os.exit(7)",
            "for i = 1, 1e7 do io.write(i, '\\n') end os.exit(7)",
            "for i = 1, 1e7 do io.stdout:write(i, '\\n') end os.exit(7)",
        ] {
            let (st, line, err) = head_1(as_, &["-e", chunk]);
            assert_eq!(line, "1\n");
            assert_eq!(st.code(), Some(141), "{chunk}: {st:?} {err}");
            assert_eq!(err, "", "{chunk}");
        }
        // Under --plan the plan still comes, on stderr.
        let (st, line, err) = head_1(
            as_,
            &["--plan", "-e", "require'nsrun'.mkdir('/x') for i = 1, 1e7 do print(i) end"],
        );
        assert_eq!(line, "1\n");
        assert_eq!(st.code(), Some(141), "{st:?} {err}");
        assert!(err.starts_with("plan: 1 operations") && err.contains("mkdir(\"/x\""), "{err}");
        // nsrun's own output: the man page.
        let (st, line, err) = head_1(as_, &["man"]);
        assert!(line.starts_with(".ie"), "{line}");
        assert!(matches!(st.code(), Some(0 | 141)), "{st:?} {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
);

both!(
    /// A plan whose reader has gone (`nsrun --plan … 2>&1 | head -1`) is no
    /// panic either.
    fn closed_plan_stream_is_no_panic(as_) {
        let dir = common::run_dir(as_);
        let mut child = command(as_, dir.path())
            .args(["--plan", "-e", "local ns = require'nsrun' for i = 1, 20000 do ns.mkdir('/x' .. i) end"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let st = child.wait().unwrap();
        assert_eq!(line, "plan: 20000 operations, none performed\n");
        assert_eq!(st.code(), Some(0), "{st:?} (101 is a panic)");
        assert_eq!(st.signal(), None);
    }
);

// ---------------------------------------------------------------------------
// (d) strace of --plan.

fn example(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
}

/// A process in our namespaces that `as_` may inspect, for nsenter.lua to
/// join (nothing, as all are ours): this test process, or as uid 65534 a
/// sleep of its own (a root process's namespace files are refused to it).
struct NsenterTarget(Option<std::process::Child>);

impl NsenterTarget {
    fn new(as_: As) -> Self {
        NsenterTarget((as_ == As::User).then(|| {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .args(["sleep", "600"])
                .spawn()
                .unwrap()
        }))
    }

    fn pid(&self) -> String {
        self.0
            .as_ref()
            .map_or(std::process::id(), |c| c.id())
            .to_string()
    }
}

impl Drop for NsenterTarget {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The examples, with arguments that let them run.
fn examples(target: &NsenterTarget) -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("hello.lua", vec![]),
        ("broker.lua", vec![]),
        ("nsenter.lua", vec![target.pid(), "true".into()]),
        ("pod.lua", vec![]),
        ("readonly-host.lua", vec!["true".into()]),
        ("readonly-root.lua", vec!["true".into()]),
        ("rootfs.lua", vec![]),
        ("shell.lua", vec!["true".into()]),
        ("veth-pair.lua", vec![]),
    ]
}

/// Recipes beyond the examples, for the strace and the plan/trace checks.
const EXTRA: &[(&str, &str)] = &[
    (
        "spawn-all.lua",
        r#"local ns = require "nsrun"
           local r = ns.run{argv = {"true"}, namespaces = "user,mount,pid,uts,ipc,net,time",
             hostname = "box", setup = function() ns.mount("tmpfs", "/tmp", "tmpfs") end}
           assert(r.code == 0)"#,
    ),
    (
        "sandbox.lua",
        r#"local sandbox = require "nsrun.sandbox"
           local r = sandbox.run{argv = {"true"}, binds = {{"/", "/", ro = true}},
             tmpfs = {{"/tmp", size = "8M"}}, proc = "/proc", dev = "/dev", hostname = "box"}
           assert(r.code == 0, r.code)"#,
    ),
    (
        "relay-init.lua",
        r#"local ns = require "nsrun"
           -- time at clone is impossible: a relay, then PID 1 behind it.
           assert(ns.run{argv = {"true"}, namespaces = "user,pid,time,mount",
             time_offsets = {monotonic = 5}}.code == 0)
           -- fn and setup: Lua in the child, the init forked, not shared.
           assert(ns.run{fn = function() return 0 end, namespaces = "user,pid,mount",
             setup = function() end}.code == 0)"#,
    ),
    (
        "tty.lua",
        r#"local ns = require "nsrun"
           -- A terminal of its own, in a pid namespace and in none.
           local p = ns.spawn{argv = {"true"}, tty = "master", namespaces = "user,pid"}
           p.tty:read("a")
           assert(p:wait().code == 0)
           assert(ns.run{argv = {"true"}, tty = true, namespaces = "user"}.code == 0)"#,
    ),
    (
        "lockdown.lua",
        r#"local ns = require "nsrun"
           local r = ns.run{argv = {"true"}, namespaces = "user,mount,pid", caps = {keep = {}},
             seccomp = "default", no_new_privs = true, rlimits = {nofile = 64},
             disable_userns = true, stdout = "./out.txt", cwd = "/"}
           assert(r.code == 0, r.code)
           -- A start that shares our memory (no maps of ours to write).
           assert(ns.run{argv = {"true"}}.code == 0)
           assert(ns.run{argv = {"true"}, namespaces = "user", setgroups = "deny"}.code == 0)"#,
    ),
    (
        "join.lua",
        r#"local ns = require "nsrun"
           local holder = ns.spawn{argv = {"sleep", "30"}, namespaces = "user,net,uts,pid",
             hostname = "joined"}
           local r = ns.run{argv = {"true"}, join = {user = holder, net = holder, uts = holder}}
           holder:kill()
           holder:wait()
           assert(r.code == 0, r.code)"#,
    ),
    (
        "channel.lua",
        r#"local ns = require "nsrun"
           -- The program's end goes on fd 3 in the child, planned as done.
           local p = ns.spawn{argv = {"true"}, channel = 3, namespaces = "user,pid"}
           local v, why = p.channel:recv(5)
           assert(v == nil and why == "closed", why)
           assert(p:wait().code == 0)"#,
    ),
    (
        "fork.lua",
        r#"local ns = require "nsrun"
           local p = ns.clone("user,uts", function() ns.sethostname("f") return 4 end)
           assert(p:wait().code == 4)"#,
    ),
];

/// What a line of `strace -f` output shows `--plan` doing that it must not.
fn forbidden(line: &str) -> Option<&'static str> {
    // "PID name(args) = result"
    let call = line.split_once(' ').map_or(line, |(_, c)| c.trim_start());
    let name = call.split('(').next().unwrap_or("");
    let always = [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "sethostname",
        "setdomainname",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "renameat2",
        "rmdir",
        "mkdir",
        "mkdirat",
        "symlink",
        "symlinkat",
        "chmod",
        "fchmodat",
        "clone",
        "clone3",
        "fork",
        "vfork",
        "execve",
        "kill",
        "umask",
        "pidfd_open",
        "rt_sigprocmask",
        "signalfd4",
        "capset",
        "seccomp",
        "setrlimit",
        "mount_setattr",
        "move_mount",
        "fsmount",
        "open_tree",
    ];
    if let Some(n) = always.iter().find(|n| **n == name) {
        return Some(n);
    }
    match name {
        "openat" | "open"
            if ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|f| call.contains(f))
                && !call.contains("\"/dev/null\"") =>
        {
            Some("open for writing")
        }
        // Netlink queries (RTM_GET…) read; anything else would change.
        "sendto" | "sendmsg" if call.contains("nlmsg_type") && !call.contains("RTM_GET") => {
            Some("netlink request")
        }
        "prctl"
            if call.contains("PR_SET_") || call.contains("DROP") || call.contains("AMBIENT") =>
        {
            Some("prctl that sets")
        }
        "prlimit64" if !call.contains(", NULL, ") => Some("prlimit64 that sets"),
        _ => None,
    }
}

/// `nsrun --plan` of `file` (in `files`) under `strace -f`: the forbidden
/// calls it made.
fn strace_plan(as_: As, files: &[(&str, &[u8])], file: &str, args: &[String]) -> Vec<String> {
    let dir = common::run_dir(as_);
    for (name, data) in files {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    let log = dir.path().join("strace.log");
    let calls = "mount,umount2,unshare,setns,pivot_root,sethostname,setdomainname,unlink,unlinkat,\
                 rename,renameat,renameat2,rmdir,mkdir,mkdirat,symlink,symlinkat,chmod,fchmodat,\
                 clone,clone3,fork,vfork,execve,kill,umask,pidfd_open,rt_sigprocmask,signalfd4,\
                 capset,seccomp,setrlimit,prlimit64,prctl,open,openat,sendto,sendmsg,\
                 mount_setattr,move_mount,fsmount,open_tree";
    let inner = command(as_, dir.path());
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-s", "128", "-e"])
        .arg(format!("trace={calls}"))
        .arg("-o")
        .arg(&log)
        .arg(inner.get_program())
        .args(inner.get_args())
        .args(["--plan", file])
        .args(args)
        .current_dir(dir.path())
        .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{file}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let nsrun = common::binary(as_).to_string_lossy().into_owned();
    // From nsrun's own exec on (setpriv's set-up before it is not nsrun's).
    let start = text
        .lines()
        .position(|l| l.contains(&format!("execve(\"{nsrun}\"")) && l.ends_with("= 0"))
        .expect("nsrun's exec in the strace log");
    text.lines()
        .skip(start + 1)
        .filter_map(|l| forbidden(l).map(|why| format!("{why}: {l}")))
        .collect()
}

fn have_strace() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skip: strace is not installed (Debian: apt-get install strace)");
    }
    ok
}

both!(
    /// `strace -f` of `--plan` over every example (and a few more recipes)
    /// shows no mount, no clone, no unshare/setns, no unlink or rename, no
    /// open for writing (of /proc or else), no netlink request that
    /// changes anything, no signal mask or umask change, no pidfd.
    fn strace_of_plan_shows_nothing_performed(as_) {
        if !have_strace() {
            return;
        }
        let mut bad = Vec::new();
        let target = NsenterTarget::new(as_);
        for (name, args) in examples(&target) {
            let data = example(name);
            bad.extend(strace_plan(as_, &[(name, &data)], name, &args));
        }
        for (name, src) in EXTRA {
            bad.extend(strace_plan(as_, &[(name, src.as_bytes())], name, &[]));
        }
        let netns = r#"local netns = require "nsrun.netns"
                       netns.add("planio") netns.delete("planio")"#;
        bad.extend(strace_plan(as_, &[("netns.lua", netns.as_bytes())], "netns.lua", &[]));
        assert!(bad.is_empty(), "--plan performed:\n{}", bad.join("\n"));
    }
);

both!(
    /// `--plan` with `net` and `ports` starts no network tool (under
    /// strace: no clone, no exec) and binds no port; the start is a step
    /// of the plan, with the tool's command line.
    fn usernet_is_planned_not_started(as_) {
        let recipe = r#"local ns = require "nsrun"
            ns.run{argv = {"true"}, namespaces = "user,net", net = "pasta",
              ports = {"127.0.0.1:18300:80"}}
            local sandbox = require "nsrun.sandbox"
            sandbox.run{argv = {"true"}, binds = {{"/", "/", ro = true}}, net = "slirp4netns",
              ports = {"18301:80/udp"}}"#;
        let have = |t: &str| Path::new("/usr/bin").join(t).exists();
        if !have("pasta") || !have("slirp4netns") {
            eprintln!("skip: pasta or slirp4netns is not installed (scripts/deps.sh installs them)");
            return;
        }
        let d = common::nsrun(as_)
            .file("r.lua", recipe.as_bytes())
            .args(&["--plan", "r.lua"])
            .run();
        d.success();
        d.stderr_has("parent  start pasta (pasta --config-net");
        d.stderr_has("--netns /proc/self/fd/5 --userns /proc/self/fd/6");
        d.stderr_has("with fd 5 = /proc/$CHILD/ns/net, fd 6 = /proc/$CHILD/ns/user");
        d.stderr_has("-t 127.0.0.1/18300:80 -u none");
        d.stderr_has("parent  start slirp4netns (slirp4netns --configure");
        d.stderr_has("--api-socket $API /proc/self/fd/5 tap0");
        if have_strace() {
            let bad = strace_plan(as_, &[("r.lua", recipe.as_bytes())], "r.lua", &[]);
            assert!(bad.is_empty(), "--plan performed:\n{}", bad.join("\n"));
        }
    }
);

// ---------------------------------------------------------------------------
// (e) --plan walks what --trace shows.

/// Recipes whose plan may differ from the real run's trace (none: the
/// plan walks the start's own steps).
const KNOWN_DRIFT: &[&str] = &[];

/// Recipes that walk, through `ns.root`, into mounts the plan did not
/// make (a fresh tmpfs, procfs or sysfs): what the real walk finds there
/// (a /proc entry to mask, a directory to create) a plan cannot know, so
/// it assumes. For these the walk's calls are left out of the comparison;
/// every other step must match as for the rest.
const WALKS_NEW_MOUNTS: &[&str] = &[
    "readonly-host.lua",
    "rootfs.lua",
    "sandbox.lua",
    "shell.lua",
];

/// A call of such a walk: fd-relative, or into the root the walk built.
fn in_walk(call: &str) -> bool {
    (FD_CALLS.iter().any(|c| call.starts_with(c)) && !call.starts_with("setns("))
        || call.contains(" in_root")
        || call.starts_with("mount(\"/newroot\", \"/newroot\"")
}

/// Calls whose integer arguments are fds, which a plan does not have
/// (it shows -1, or the path a namespace would be joined by).
const FD_CALLS: &[&str] = &[
    "setns(",
    "fsconfig(",
    "fsmount(",
    "move_mount(",
    "mkdirat(",
    "openat(",
    "openat2(",
    "open_tree(",
    "mount_setattr(",
    "symlinkat(",
];

/// A fd-taking call with its decimal (and `setns`'s path) arguments made `FD`.
fn fds_named(call: &str) -> String {
    if !FD_CALLS.iter().any(|c| call.starts_with(c)) {
        return call.to_string();
    }
    let (head, args) = call.split_once('(').unwrap();
    let mut out = format!("{head}(");
    let mut first = true;
    for a in args.split(", ") {
        if !first {
            out.push_str(", ");
        }
        let (arg, close) = match a.strip_suffix(')') {
            Some(x) => (x, ")"),
            None => (a, ""),
        };
        let decimal = arg.strip_prefix('-').unwrap_or(arg);
        let is_fd = !decimal.is_empty() && decimal.bytes().all(|b| b.is_ascii_digit())
            || (first && head == "setns" && arg.starts_with('"'));
        out.push_str(if is_fd { "FD" } else { arg });
        out.push_str(close);
        first = false;
    }
    out
}

/// `/proc/1234/` and `kill(1234,` with the pid made `$PID`; the plan's
/// `$CHILD` too.
fn normalise(call: &str) -> String {
    let call = call.replace("$CHILD", "$PID");
    let mut out = String::new();
    let mut rest = call.as_str();
    while let Some(i) = ["/proc/", "kill(", "kill(-"]
        .iter()
        .filter_map(|m| rest.find(m).map(|i| i + m.len()))
        .min()
    {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("$PID");
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    let out = fds_named(&out);
    // The program as named: the trace shows each path tried.
    if let Some(args) = out.strip_prefix("execve(\"") {
        if let Some((path, tail)) = args.split_once('"') {
            let base = path.rsplit('/').next().unwrap_or(path);
            return format!("execve(\"{base}\"{tail}");
        }
    }
    out
}

/// The plan's (process, call) steps from `--plan`'s text.
fn plan_steps(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip_while(|l| !l.starts_with("plan: "))
        .skip(1)
        .filter_map(|l| {
            let l = l.trim_start();
            let (_, rest) = l.split_once("  ")?;
            let (role, call) = rest.split_once(' ')?;
            // A note (`# as bubblewrap: …`) is no step: nothing traces it.
            if call.trim_start().starts_with("# ") {
                return None;
            }
            Some((role.to_string(), normalise(call.trim_start())))
        })
        .collect()
}

/// The trace's (pid, call) lines, failed exec attempts of a PATH search
/// left out.
fn trace_steps(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("nsrun[") else {
            continue;
        };
        let Some((pid, call)) = rest.split_once("]: ") else {
            continue;
        };
        if call.starts_with("execve(") && call.contains(") = ") {
            // The attempt before it, of the same process, failed.
            if let Some(i) = out
                .iter()
                .rposition(|(p, c)| p == pid && c.starts_with("execve("))
            {
                out.remove(i);
            }
            continue;
        }
        let call = match call.rsplit_once(" = ") {
            Some((c, _)) => c,
            None => call,
        };
        out.push((pid.to_string(), normalise(call)));
    }
    out
}

/// How the plan differs from the trace: the parent's steps in order; the
/// other processes' steps as a whole (the same calls), each process's in
/// the order the plan has them.
fn drift(plan: &[(String, String)], trace: &[(String, String)], parent_pid: &str) -> Vec<String> {
    let mut why = Vec::new();
    let plan_parent: Vec<&str> = plan
        .iter()
        .filter(|(r, _)| r == "parent")
        .map(|(_, c)| c.as_str())
        .collect();
    let trace_parent: Vec<&str> = trace
        .iter()
        .filter(|(p, _)| *p == parent_pid)
        .map(|(_, c)| c.as_str())
        .collect();
    if plan_parent != trace_parent {
        why.push(format!(
            "parent: plan {plan_parent:#?}\ntrace {trace_parent:#?}"
        ));
    }
    let plan_rest: Vec<&str> = plan
        .iter()
        .filter(|(r, _)| r != "parent")
        .map(|(_, c)| c.as_str())
        .collect();
    let mut a = plan_rest.clone();
    let mut b: Vec<&str> = trace
        .iter()
        .filter(|(p, _)| *p != parent_pid)
        .map(|(_, c)| c.as_str())
        .collect();
    a.sort();
    b.sort();
    if a != b {
        let only_plan: Vec<&&str> = a.iter().filter(|c| !b.contains(c)).collect();
        let only_trace: Vec<&&str> = b.iter().filter(|c| !a.contains(c)).collect();
        why.push(format!(
            "children: calls only planned {only_plan:#?}\nonly traced {only_trace:#?}\n\
             (or as often: {} planned, {} traced)",
            a.len(),
            b.len()
        ));
    }
    let mut pids: Vec<&str> = Vec::new();
    for (p, _) in trace {
        if p != parent_pid && !pids.contains(&p.as_str()) {
            pids.push(p);
        }
    }
    for pid in pids {
        let seq: Vec<&str> = trace
            .iter()
            .filter(|(p, _)| p == pid)
            .map(|(_, c)| c.as_str())
            .collect();
        let mut it = plan_rest.iter();
        if !seq.iter().all(|c| it.any(|p| p == c)) {
            why.push(format!(
                "process {pid}: its steps are not in the plan's order: {seq:#?}"
            ));
        }
    }
    why
}

/// Run `name` with `mode` (`--trace`, `--plan`): nsrun's pid, its exit
/// status and its stderr.
fn run_mode(
    as_: As,
    mode: &str,
    name: &str,
    src: &[u8],
    args: &[String],
) -> (u32, Option<i32>, String) {
    let dir = common::run_dir(as_);
    std::fs::write(dir.path().join(name), src).unwrap();
    let child = command(as_, dir.path())
        .args([mode, name])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // setpriv execs nsrun: the same pid.
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    (
        pid,
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

both!(
    /// For every example and a few more recipes, the steps `--plan`
    /// prints are those `--trace` logs in a real run, per process.
    fn plan_walks_what_trace_shows(as_) {
        let target = NsenterTarget::new(as_);
        let mut recipes: Vec<(String, Vec<u8>, Vec<String>)> = examples(&target)
            .into_iter()
            .map(|(n, a)| (n.to_string(), example(n), a))
            .collect();
        for (n, src) in EXTRA {
            recipes.push((n.to_string(), src.as_bytes().to_vec(), vec![]));
        }
        let mut failed = Vec::new();
        for (name, src, args) in &recipes {
            let trace = run_mode(as_, "--trace", name, src, args);
            let plan = run_mode(as_, "--plan", name, src, args);
            if trace.1 != plan.1 {
                failed.push(format!("{name}: traced {trace:?}\nplanned {plan:?}"));
                continue;
            }
            let (mut planned, mut traced) = (plan_steps(&plan.2), trace_steps(&trace.2));
            if WALKS_NEW_MOUNTS.contains(&name.as_str()) {
                planned.retain(|(_, c)| !in_walk(c));
                traced.retain(|(_, c)| !in_walk(c));
            }
            let why = drift(&planned, &traced, &trace.0.to_string());
            let known = KNOWN_DRIFT.contains(&name.as_str());
            match (why.is_empty(), known) {
                (true, true) => eprintln!(
                    "{name} as {}: plan and trace agree: take it off KNOWN_DRIFT",
                    as_.name()
                ),
                (false, false) => failed.push(format!("{name}:\n{}", why.join("\n"))),
                _ => {}
            }
        }
        assert!(failed.is_empty(), "--plan differs from --trace:\n{}", failed.join("\n\n"));
    }
);

#[test]
fn normalise_and_drift_compare_what_they_should() {
    assert_eq!(
        normalise(r#"write("/proc/4242/uid_map", "0 0 1\n")"#),
        normalise(r#"write("/proc/$CHILD/uid_map", "0 0 1\n")"#)
    );
    assert_eq!(
        normalise(r#"move_mount(4, "", -1, "sys", 0x4)"#),
        r#"move_mount(FD, "", FD, "sys", 0x4)"#
    );
    assert_eq!(
        normalise(r#"setns("/proc/self/fd/5", net)"#),
        "setns(FD, net)"
    );
    assert_eq!(normalise("setns(12, net)"), "setns(FD, net)");
    assert_eq!(
        normalise(r#"mount("tmpfs", "/tmp", "tmpfs", 0, NULL)"#),
        r#"mount("tmpfs", "/tmp", "tmpfs", 0, NULL)"#
    );
    assert_eq!(
        normalise(r#"execve("/usr/bin/true", ["true"])"#),
        r#"execve("true", ["true"])"#
    );
    let trace = trace_steps(
        "nsrun[10]: clone(pid) = ok\n\
         nsrun[1]: mount(NULL, \"/\", NULL, rec|slave, NULL) = ok\n\
         nsrun[1]: unshare(time) = ok\n\
         nsrun[1]: execve(\"/bin/x\", [\"x\"])\n\
         nsrun[1]: execve(\"/bin/x\") = ENOENT\n\
         nsrun[1]: execve(\"/usr/bin/x\", [\"x\"])\n",
    );
    let plan = |calls: &[(&str, &str)]| -> Vec<(String, String)> {
        calls
            .iter()
            .map(|(r, c)| (r.to_string(), normalise(c)))
            .collect()
    };
    let same = plan(&[
        ("parent", "clone(pid)"),
        ("child", "mount(NULL, \"/\", NULL, rec|slave, NULL)"),
        ("child", "unshare(time)"),
        ("child", "execve(\"x\", [\"x\"])"),
    ]);
    assert_eq!(drift(&same, &trace, "10"), Vec::<String>::new());
    // The drift of issue 14: unshare(time) before the propagation mount.
    let swapped = plan(&[
        ("parent", "clone(pid)"),
        ("child", "unshare(time)"),
        ("child", "mount(NULL, \"/\", NULL, rec|slave, NULL)"),
        ("child", "execve(\"x\", [\"x\"])"),
    ]);
    assert_eq!(drift(&swapped, &trace, "10").len(), 1);
    let missing = plan(&[("parent", "clone(pid)"), ("child", "unshare(time)")]);
    assert!(!drift(&missing, &trace, "10").is_empty());
    let json =
        parse_json(r#"{"plan":[{"step":1,"process":"parent","call":"a(\"b\\n\")"}]}"#).unwrap();
    assert_eq!(
        json_steps(&json),
        [("parent".to_string(), r#"a("b\n")"#.to_string())]
    );
    assert!(parse_json(r#"{"plan":[1,]}"#).is_err());
    assert!(
        parse_json("{\"a\":\"x\ty\"}").is_err(),
        "raw control characters"
    );
}
