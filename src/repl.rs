//! The interactive prompt: `nsrun -i`, or `nsrun` alone on a terminal.

use std::path::PathBuf;

use mlua::{Function, MultiValue, Value};
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use crate::host::{Host, RunError};

fn history_path() -> Option<PathBuf> {
    history_path_from(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
}

/// The XDG base directory spec: an empty or relative `XDG_STATE_HOME` is
/// as if unset (else history would land in `./nsrun/history`, wherever
/// nsrun was started); then `$HOME/.local/state`.
fn history_path_from(
    state: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let state = state
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|h| !h.as_os_str().is_empty())
                .map(|h| h.join(".local/state"))
        })?;
    Some(state.join("nsrun").join("history"))
}

/// Print a line. A closed stdout ends nsrun quietly with status 141, as
/// SIGPIPE would end a tool that does not ignore it (nsrun does).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
    }
}

/// What one piece of input turned out to be.
enum Compiled {
    Ready(Function),
    /// The statement is not finished: read another line.
    Incomplete,
    Error(String),
}

impl Host {
    fn compile_input(&self, src: &str) -> Compiled {
        // Like lua.c: try the line as an expression first so `1 + 1` or
        // `ns.getpid()` print their value, then as a statement.
        if let Ok(f) = self
            .lua
            .load(format!("return {src}"))
            .set_name("=stdin")
            .into_function()
        {
            return Compiled::Ready(f);
        }
        match self.lua.load(src).set_name("=stdin").into_function() {
            Ok(f) => Compiled::Ready(f),
            Err(mlua::Error::SyntaxError {
                incomplete_input: true,
                ..
            }) => Compiled::Incomplete,
            Err(mlua::Error::SyntaxError { message, .. }) => Compiled::Error(message),
            Err(e) => Compiled::Error(e.to_string()),
        }
    }

    fn show(&self, vals: MultiValue) -> mlua::Result<()> {
        if vals.is_empty() {
            return Ok(());
        }
        let tostring: Function = self.lua.globals().get("tostring")?;
        let parts: Vec<String> = vals
            .iter()
            .map(|v| match v {
                Value::Table(_) => render(&tostring, v, 0, &mut Vec::new()),
                _ => tostring.call::<String>(v.clone()),
            })
            .collect::<mlua::Result<_>>()?;
        say(&parts.join("\t"));
        Ok(())
    }

    /// Read, evaluate and print until end of input. `ns` is the `nsrun`
    /// module; errors are shown and the prompt goes on.
    pub fn repl(&self) -> Result<(), RunError> {
        let ns: Value = self.lua.load("return require 'nsrun'").eval()?;
        self.lua.globals().set("ns", ns)?;
        let mut rl = DefaultEditor::new().map_err(|e| RunError::Lua(e.to_string()))?;
        let history = history_path();
        if let Some(h) = &history {
            let _ = rl.load_history(h);
        }
        say(&format!(
            "nsrun {} (Lua 5.4) — `ns` is the nsrun module; Ctrl-D leaves",
            env!("CARGO_PKG_VERSION")
        ));
        let mut buf = String::new();
        loop {
            let prompt = if buf.is_empty() { "> " } else { ">> " };
            let line = match rl.readline(prompt) {
                Ok(l) => l,
                Err(ReadlineError::Interrupted) => {
                    buf.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(RunError::Lua(e.to_string())),
            };
            if !buf.is_empty() {
                buf.push('\n');
            }
            buf.push_str(&line);
            let f = match self.compile_input(&buf) {
                Compiled::Incomplete => continue,
                Compiled::Error(m) => {
                    eprintln!("{m}");
                    let _ = rl.add_history_entry(buf.as_str());
                    buf.clear();
                    continue;
                }
                Compiled::Ready(f) => f,
            };
            let _ = rl.add_history_entry(buf.as_str());
            buf.clear();
            match crate::bindings::call_traced(&self.lua, &f, ())? {
                Ok(vals) => self.show(vals)?,
                Err(u) => eprintln!("{}", u.message),
            }
        }
        if let Some(h) = &history {
            if let Some(dir) = h.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = rl.save_history(h);
        }
        Ok(())
    }
}

/// How deep the REPL shows nested tables, and how many entries of each.
const DEPTH: usize = 3;
const ENTRIES: usize = 40;

/// `v` as the REPL shows it: a table with its contents (the sequence
/// first, then the other keys sorted), nested up to [`DEPTH`], strings in
/// it quoted; a table with `__tostring` or `__name` as `tostring` says;
/// anything else as `tostring` says.
fn render(
    tostring: &Function,
    v: &Value,
    depth: usize,
    seen: &mut Vec<*const std::ffi::c_void>,
) -> mlua::Result<String> {
    let t = match v {
        Value::Table(t) => t,
        Value::String(s) => return Ok(format!("{:?}", s.to_string_lossy())),
        other => return tostring.call::<String>(other.clone()),
    };
    if let Some(mt) = t.metatable() {
        if mt.contains_key("__tostring")? || mt.contains_key("__name")? {
            return tostring.call::<String>(v.clone());
        }
    }
    let id = t.to_pointer();
    if seen.contains(&id) {
        return Ok("<cycle>".into());
    }
    if depth >= DEPTH {
        return Ok("{…}".into());
    }
    seen.push(id);
    let n = t.raw_len();
    let mut items = Vec::new();
    for i in 1..=n.min(ENTRIES) {
        items.push(render(tostring, &t.raw_get::<Value>(i)?, depth + 1, seen)?);
    }
    let mut keyed = Vec::new();
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, val) = pair?;
        if let Value::Integer(i) = k {
            if i >= 1 && (i as usize) <= n {
                continue;
            }
        }
        let key = match &k {
            Value::String(s) => {
                let s = s.to_string_lossy();
                let ident = s
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                match ident {
                    true => s.to_string(),
                    false => format!("[{s:?}]"),
                }
            }
            other => format!("[{}]", render(tostring, other, DEPTH, seen)?),
        };
        keyed.push((key, val));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let more = n.saturating_sub(ENTRIES) + keyed.len().saturating_sub(ENTRIES);
    for (k, val) in keyed.into_iter().take(ENTRIES) {
        items.push(format!(
            "{k} = {}",
            render(tostring, &val, depth + 1, seen)?
        ));
    }
    seen.pop();
    if more > 0 {
        items.push(format!("… ({more} more)"));
    }
    Ok(match items.is_empty() {
        true => "{}".into(),
        false => format!("{{{}}}", items.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::{history_path_from, render};
    use std::path::PathBuf;

    #[test]
    fn history_path_follows_xdg() {
        let p = |s: Option<&str>, h: Option<&str>| {
            history_path_from(s.map(Into::into), h.map(Into::into))
        };
        let want = |s: &str| Some(PathBuf::from(s));
        assert_eq!(p(Some("/st"), Some("/h")), want("/st/nsrun/history"));
        assert_eq!(
            p(Some(""), Some("/h")),
            want("/h/.local/state/nsrun/history")
        );
        assert_eq!(
            p(Some("rel"), Some("/h")),
            want("/h/.local/state/nsrun/history")
        );
        assert_eq!(p(None, Some("/h")), want("/h/.local/state/nsrun/history"));
        assert_eq!(p(Some(""), None), None);
        assert_eq!(p(None, Some("")), None);
    }

    #[test]
    fn tables_are_shown_with_their_contents() {
        let lua = mlua::Lua::new();
        let show = |src: &str| {
            let v: mlua::Value = lua.load(src).eval().unwrap();
            let ts: mlua::Function = lua.globals().get("tostring").unwrap();
            render(&ts, &v, 0, &mut Vec::new()).unwrap()
        };
        assert_eq!(show("return {}"), "{}");
        assert_eq!(
            show(r#"return {1, "two", {3}, code = 0, ok = true, ["a b"] = 1}"#),
            r#"{1, "two", {3}, ["a b"] = 1, code = 0, ok = true}"#
        );
        assert_eq!(show("return {{{{1}}}}"), "{{{{…}}}}");
        assert_eq!(show("local t = {} t.me = t return t"), "{me = <cycle>}");
        assert_eq!(
            show("return setmetatable({}, {__tostring = function() return 'X' end})"),
            "X"
        );
        assert!(
            show("local t = {} for i = 1, 50 do t[i] = i end return t").ends_with("… (10 more)}")
        );
    }
}
