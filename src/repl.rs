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
            .into_iter()
            .map(|v| tostring.call::<String>(v))
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

#[cfg(test)]
mod tests {
    use super::history_path_from;
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
}
