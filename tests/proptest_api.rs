//! A proptest run over the whole Lua API: every `ns.*` and `ns.net.*`
//! function called with generated arguments under `--plan` (so nothing is
//! performed on this machine). The only outcomes allowed: a result, or a
//! Lua error that carries a message. Never a panic or a Rust-side error.

use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Lv {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Table(Vec<Lv>, Vec<(String, Lv)>),
}

fn quote(s: &str) -> String {
    let mut o = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                o.push('\\');
                o.push(b as char);
            }
            0x20..=0x7e => o.push(b as char),
            _ => o.push_str(&format!("\\{b}")),
        }
    }
    o.push('"');
    o
}

impl Lv {
    fn lua(&self) -> String {
        match self {
            Lv::Nil => "nil".into(),
            Lv::Bool(b) => b.to_string(),
            Lv::Int(i) if *i == i64::MIN => "math.mininteger".into(),
            Lv::Int(i) => i.to_string(),
            Lv::Num(f) if f.is_nan() => "(0/0)".into(),
            Lv::Num(f) if f.is_infinite() => {
                if *f > 0.0 { "math.huge" } else { "-math.huge" }.into()
            }
            Lv::Num(f) => format!("{f:?}"),
            Lv::Str(s) => quote(s),
            Lv::Table(list, map) => {
                let mut parts: Vec<String> = list.iter().map(Lv::lua).collect();
                parts.extend(
                    map.iter()
                        .map(|(k, v)| format!("[{}] = {}", quote(k), v.lua())),
                );
                format!("{{{}}}", parts.join(", "))
            }
        }
    }
}

const WORDS: &[&str] = &[
    "user",
    "mount",
    "pid",
    "uts",
    "ipc",
    "net",
    "cgroup",
    "time",
    "bind",
    "rec",
    "ro",
    "private",
    "detach",
    "self",
    "root",
    "deny",
    "allow",
    "TERM",
    "/",
    "/tmp",
    "/proc",
    "/dev/null",
    "tmpfs",
    "proc",
    "0755",
    "64M",
    "",
    "a,b",
    "user,pid",
    "argv",
    "fn",
    "namespaces",
    "hostname",
    "setup",
    "lower",
    "size",
    "mode",
    "keep",
    "drop",
    "deny",
    "default",
    "memory",
    "pids",
    "nofile",
    "lo",
    "10.0.0.1/24",
    "fd00::1/64",
    "default",
    "via",
    "peer_netns",
    "true",
    "/bin/true",
];

fn lv() -> impl Strategy<Value = Lv> {
    let leaf = prop_oneof![
        Just(Lv::Nil),
        any::<bool>().prop_map(Lv::Bool),
        prop_oneof![any::<i64>(), -5i64..70000].prop_map(Lv::Int),
        any::<f64>().prop_map(Lv::Num),
        prop::sample::select(WORDS).prop_map(|s| Lv::Str(s.to_string())),
        "[ -~]{0,12}".prop_map(Lv::Str),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        (
            prop::collection::vec(inner.clone(), 0..4),
            prop::collection::vec(
                (prop::sample::select(WORDS).prop_map(String::from), inner),
                0..4,
            ),
        )
            .prop_map(|(l, m)| Lv::Table(l, m))
    })
}

/// The functions of the module, listed by the module itself.
fn functions() -> Vec<String> {
    let host = nsrun::Host::new().unwrap();
    let names: Vec<String> = host
        .lua()
        .load(
            r#"local ns = require "nsrun"
               local out = {}
               for k, v in pairs(ns) do if type(v) == "function" then out[#out + 1] = k end end
               for k, v in pairs(ns.net or {}) do if type(v) == "function" then out[#out + 1] = "net." .. k end end
               table.sort(out)
               return out"#,
        )
        .eval()
        .unwrap();
    assert!(names.len() > 40, "{names:?}");
    names
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_function_any_arguments(pick in any::<prop::sample::Index>(), args in prop::collection::vec(lv(), 0..5)) {
        let names = functions();
        let name = pick.get(&names);
        let call = format!("ns.{name}({})", args.iter().map(Lv::lua).collect::<Vec<_>>().join(", "));
        let chunk = format!(
            r#"local ns = require "nsrun"
               local ok, e = pcall(function() return {call} end)
               if not ok then
                 local msg = type(e) == "table" and e.message or e
                 assert(type(msg) == "string" and #msg > 0, "an error without a message: " .. tostring(e))
                 assert(not msg:find("panicked"), msg)
               end"#
        );
        nsrun::sys::ops::plan_begin();
        let host = nsrun::Host::new().unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.run_chunk(chunk.as_bytes(), "=prop", &[] as &[&str])));
        // Values that clean up on collection (cgroups, handles) go while
        // still planning.
        drop(host);
        nsrun::sys::ops::plan_end();
        prop_assert!(r.is_ok(), "{call} panicked");
        let r = r.unwrap();
        prop_assert!(r.is_ok(), "{call}: {:?}", r.err());
    }
}
