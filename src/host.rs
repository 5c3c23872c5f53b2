//! The Lua host: one Lua 5.4 state with `nsrun` preloaded.

use std::path::Path;

use mlua::{ChunkMode, Function, Lua, LuaOptions, StdLib, Table, Value};

use crate::bindings;

/// The standard library: Lua modules shipped inside the binary, loaded on
/// first `require`. Each is `lua/<name with / for .>.lua`, as bytecode
/// (build.rs) and as source.
const STDLIB: &[(&str, &[u8], &str)] = &[
    (
        "nsrun.sandbox",
        include_bytes!(concat!(env!("OUT_DIR"), "/sandbox.luac")),
        include_str!("../lua/nsrun/sandbox.lua"),
    ),
    (
        "nsrun.bwrap",
        include_bytes!(concat!(env!("OUT_DIR"), "/bwrap.luac")),
        include_str!("../lua/nsrun/bwrap.lua"),
    ),
    (
        "nsrun.oci",
        include_bytes!(concat!(env!("OUT_DIR"), "/oci.luac")),
        include_str!("../lua/nsrun/oci.lua"),
    ),
    (
        "nsrun.netns",
        include_bytes!(concat!(env!("OUT_DIR"), "/netns.luac")),
        include_str!("../lua/nsrun/netns.lua"),
    ),
];

/// Why a recipe did not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The recipe could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It does not compile; the message starts with `recipe.lua:LINE:`.
    #[error("{0}")]
    Syntax(String),
    /// It raised an error that nothing caught.
    #[error("{message}")]
    Uncaught {
        /// The error's string form, starting with `recipe.lua:LINE:`.
        message: String,
        /// The Lua traceback from where it was raised.
        traceback: String,
    },
    /// The Lua state itself failed (out of memory, …).
    #[error("{0}")]
    Lua(String),
}

// mlua's error is neither Send nor Sync; keep its message so RunError works
// with anyhow and across threads of an embedding application.
impl From<mlua::Error> for RunError {
    fn from(e: mlua::Error) -> Self {
        RunError::Lua(e.to_string())
    }
}

/// A Lua 5.4 state with the safe standard library and `require "nsrun"`.
///
/// ```
/// let host = nsrun::Host::new()?;
/// // Full mlua access: add globals, functions, modules.
/// host.lua().globals().set("answer", 42)?;
/// let recipe = "local ns = require 'nsrun'
///               assert(ns.getpid() > 0)
///               return answer - 40 + select('#', ...)";
/// let code = host.run_chunk(recipe.as_bytes(), "=example", &["a", "b"])?;
/// assert_eq!(code, 4);
/// // Recipes from files: host.run_file("recipe.lua", &["a", "b"])
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Host {
    pub(crate) lua: Lua,
}

impl Host {
    /// A new host. The `nsrun` module is built on first `require`.
    pub fn new() -> mlua::Result<Host> {
        let lua = Lua::new_with(StdLib::ALL_SAFE, LuaOptions::default())?;
        // Generational collection: a recipe's garbage is mostly young (option
        // tables, statuses), and a loop of 500 spawns then peaks 128 KiB
        // lower (3888 against 4016 KiB) at the same speed.
        lua.gc_gen(0, 0);
        bindings::oslib::install(&lua)?;
        if crate::sys::ops::planning() {
            // After oslib: under --plan no child really forks, and the
            // plan's os.exit ends the planned part instead.
            bindings::plan::guard_stdlib(&lua)?;
        }
        let preload: Table = lua.globals().get::<Table>("package")?.get("preload")?;
        preload.set(
            "nsrun",
            lua.create_function(|lua, ()| bindings::module(lua))?,
        )?;
        for (name, code, src) in STDLIB {
            let loader = lua.create_function(move |lua, ()| {
                // Whether this is a --plan run, which the modules cannot
                // ask nsrun otherwise: there earlier steps were only
                // recorded, so the host's file system is not what a real
                // run would find.
                bindings::load_shipped(lua, &format!("@[{name}]"), code, src)?
                    .call::<Value>((crate::sys::ops::planning(), bindings::shipped_helpers(lua)?))
            })?;
            preload.set(*name, loader)?;
        }
        Ok(Host { lua })
    }

    /// The Lua state, for adding functions, modules and globals.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Run the recipe at `path` with `arg`/`...` set from `args`, and return
    /// its exit code: an integer it returns, a status table's `code`, 1 for
    /// `false`, else 0.
    pub fn run_file<S: AsRef<str>>(
        &self,
        path: impl AsRef<Path>,
        args: &[S],
    ) -> Result<i32, RunError> {
        let path = path.as_ref();
        let src = std::fs::read(path).map_err(|source| RunError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.add_search_dir(path)?;
        let f = self.compile(&src, &format!("@{}", path.display()))?;
        self.call(f, &path.display().to_string(), args)
    }

    /// Run a chunk of Lua source. `name` is how messages show it, e.g.
    /// `=(command line)` or `@recipe.lua`.
    pub fn run_chunk<S: AsRef<str>>(
        &self,
        src: &[u8],
        name: &str,
        args: &[S],
    ) -> Result<i32, RunError> {
        let f = self.compile(src, name)?;
        let script = name.trim_start_matches(['@', '=']).to_string();
        self.call(f, &script, args)
    }

    /// Compile without running (for `--check`).
    pub fn check(&self, src: &[u8], name: &str) -> Result<(), RunError> {
        self.compile(src, name).map(drop)
    }

    fn add_search_dir(&self, path: &Path) -> mlua::Result<()> {
        // Recipes may `require` modules that sit next to them.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.display().to_string(),
            _ => ".".into(),
        };
        let package: Table = self.lua.globals().get("package")?;
        let old: String = package.get("path")?;
        package.set("path", format!("{dir}/?.lua;{old}"))
    }

    fn compile(&self, src: &[u8], name: &str) -> Result<Function, RunError> {
        // Like lua.c, skip a first line starting with '#' (a shebang), but
        // keep its newline so line numbers stay right.
        let src = if src.starts_with(b"#") {
            let end = src.iter().position(|b| *b == b'\n').unwrap_or(src.len());
            &src[end..]
        } else {
            src
        };
        self.lua
            .load(src)
            .set_name(name)
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let message = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                if message.contains("attempt to load a binary chunk") {
                    return RunError::Syntax(format!(
                        "{}: a precompiled Lua chunk; nsrun runs recipes from source only",
                        name.trim_start_matches(['@', '='])
                    ));
                }
                RunError::Syntax(message)
            })
    }

    fn call<S: AsRef<str>>(&self, f: Function, script: &str, args: &[S]) -> Result<i32, RunError> {
        let arg = self.lua.create_table()?;
        arg.set(0, script)?;
        for (i, a) in args.iter().enumerate() {
            arg.set(i + 1, a.as_ref())?;
        }
        self.lua.globals().set("arg", arg)?;
        let varargs: Vec<Value> = args
            .iter()
            .map(|a| self.lua.create_string(a.as_ref()).map(Value::String))
            .collect::<mlua::Result<_>>()?;
        match bindings::call_traced(&self.lua, &f, mlua::MultiValue::from_vec(varargs))? {
            Ok(vals) => bindings::exit_code_of(vals.front()).map_err(|m| RunError::Uncaught {
                message: format!("{}: the recipe {m}", script.trim_start_matches(['@', '='])),
                traceback: String::new(),
            }),
            Err(u) => Err(RunError::Uncaught {
                message: u.message,
                traceback: u.traceback,
            }),
        }
    }
}
