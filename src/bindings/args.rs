//! Argument checking with Lua's own messages:
//! `bad argument #2 to 'mount' (string expected, got number)`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use mlua::{AnyUserData, Function, MultiValue, Table, Value};

use crate::sys::namespace::{Namespace, Namespaces};

/// Why a binding failed.
pub(crate) enum Fail {
    /// A system-layer error; system call failures become error tables.
    Sys(crate::Error),
    /// A message about the caller's mistake; the caller's position is added.
    Msg(String),
    /// An error from Lua code the binding called, or from mlua.
    Lua(mlua::Error),
}

impl From<crate::Error> for Fail {
    fn from(e: crate::Error) -> Self {
        Fail::Sys(e)
    }
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Lua(e)
    }
}

pub(crate) type R<T> = Result<T, Fail>;

/// Lua's name for a value's type.
pub(crate) fn typename(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::UserData(_) | Value::LightUserData(_) => "userdata",
        _ => "userdata",
    }
}

/// The arguments of one call, with the function's name for messages.
pub(crate) struct Args {
    name: &'static str,
    vals: Vec<Value>,
}

impl Args {
    pub fn new(name: &'static str, mv: MultiValue) -> Self {
        Args {
            name,
            vals: mv.into_vec(),
        }
    }

    /// The function's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Argument `i` (1-based); nil when absent.
    pub fn get(&self, i: usize) -> &Value {
        const NIL: &Value = &Value::Nil;
        self.vals.get(i - 1).unwrap_or(NIL)
    }

    /// How many arguments were passed (trailing nils count).
    pub fn len(&self) -> usize {
        self.vals.len()
    }

    /// Whether argument `i` is absent or nil.
    pub fn is_nil(&self, i: usize) -> bool {
        matches!(self.get(i), Value::Nil)
    }

    /// `bad argument #i to 'name' (msg)`.
    pub fn bad(&self, i: usize, msg: impl std::fmt::Display) -> Fail {
        Fail::Msg(format!("bad argument #{i} to '{}' ({msg})", self.name))
    }

    /// A message that names the function: `mount: msg`.
    pub fn fail(&self, msg: impl std::fmt::Display) -> Fail {
        Fail::Msg(format!("{}: {msg}", self.name))
    }

    /// A message about part `what` of the call: `tmpfs: msg` from
    /// `tmpfs`, `sandbox: tmpfs: msg` from elsewhere; never `tmpfs: tmpfs:`.
    pub fn fail_in(&self, what: &str, msg: impl std::fmt::Display) -> Fail {
        if self.name == what {
            self.fail(msg)
        } else {
            self.fail(format!("{what}: {msg}"))
        }
    }

    fn expected(&self, i: usize, what: &str) -> Fail {
        let got = if i > self.vals.len() {
            "no value"
        } else {
            typename(self.get(i))
        };
        self.bad(i, format!("{what} expected, got {got}"))
    }

    /// A string. Unlike luaL_checkstring, numbers are refused: a number
    /// where a path or name belongs is almost always a mistake. Names
    /// (kinds, interfaces, signals) must be UTF-8; paths go through
    /// [`Args::path`], which takes any bytes.
    pub fn string(&self, i: usize) -> R<String> {
        match self.get(i) {
            Value::String(s) => match s.to_str() {
                Ok(s) if s.contains('\0') => Err(self.bad(i, "string contains a NUL byte")),
                Ok(s) => Ok(s.to_string()),
                Err(_) => Err(self.bad(i, "string is not valid UTF-8")),
            },
            _ => Err(self.expected(i, "string")),
        }
    }

    /// A path for an operation that takes UTF-8 paths only so far (a
    /// root's): other bytes are refused, never changed.
    pub fn path_str(&self, i: usize) -> R<String> {
        let p = self.path(i)?;
        p.into_os_string()
            .into_string()
            .map_err(|_| self.bad(i, "path is not valid UTF-8 (not supported here yet)"))
    }

    /// A path: the string's bytes as they are (Lua strings are bytes, and
    /// so are Linux paths). A NUL byte cannot reach the kernel: refused.
    pub fn path(&self, i: usize) -> R<PathBuf> {
        match self.get(i) {
            Value::String(s) => path_of(&s.as_bytes()).map_err(|m| self.bad(i, m)),
            _ => Err(self.expected(i, "string")),
        }
    }

    /// A path or nil.
    pub fn opt_path(&self, i: usize) -> R<Option<PathBuf>> {
        if self.is_nil(i) {
            Ok(None)
        } else {
            self.path(i).map(Some)
        }
    }

    /// A string or nil.
    pub fn opt_string(&self, i: usize) -> R<Option<String>> {
        if self.is_nil(i) {
            Ok(None)
        } else {
            self.string(i).map(Some)
        }
    }

    /// A string's raw bytes.
    pub fn bytes(&self, i: usize) -> R<Vec<u8>> {
        match self.get(i) {
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            _ => Err(self.expected(i, "string")),
        }
    }

    /// An integer (a float with an integral value is accepted).
    pub fn integer(&self, i: usize) -> R<i64> {
        match self.get(i) {
            Value::Integer(n) => Ok(*n),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Ok(*n as i64),
            Value::Number(_) => Err(self.bad(i, "number has no integer representation")),
            _ => Err(self.expected(i, "number")),
        }
    }

    /// A table.
    pub fn table(&self, i: usize) -> R<Table> {
        match self.get(i) {
            Value::Table(t) => Ok(t.clone()),
            _ => Err(self.expected(i, "table")),
        }
    }

    /// A table or nil.
    pub fn opt_table(&self, i: usize) -> R<Option<Table>> {
        if self.is_nil(i) {
            Ok(None)
        } else {
            self.table(i).map(Some)
        }
    }

    /// A function.
    pub fn function(&self, i: usize) -> R<Function> {
        match self.get(i) {
            Value::Function(f) => Ok(f.clone()),
            _ => Err(self.expected(i, "function")),
        }
    }

    /// A userdata of type `T`, e.g. `self` of a method.
    pub fn userdata<T: 'static>(&self, i: usize, what: &str) -> R<AnyUserData> {
        match self.get(i) {
            Value::UserData(u) if u.is::<T>() => Ok(u.clone()),
            _ => Err(self.expected(i, what)),
        }
    }

    /// A process id: a positive integer, or `"self"` (None).
    pub fn pid(&self, i: usize) -> R<Option<i32>> {
        match self.get(i) {
            Value::String(s) if s.to_string_lossy() == "self" => Ok(None),
            Value::Nil if i > self.vals.len() || self.is_nil(i) => Ok(None),
            _ => {
                let n = self.integer(i)?;
                // Under --plan a child that was never started stands for
                // ourselves, so the rest of the recipe can be planned.
                if n == crate::sys::ops::PLANNED_PID as i64 && crate::sys::ops::planning() {
                    return Ok(None);
                }
                if n <= 0 || n > i32::MAX as i64 {
                    return Err(self.bad(i, format!("pid must be positive, got {n}")));
                }
                Ok(Some(n as i32))
            }
        }
    }

    /// Names given as a list `{"a","b"}` or a comma string `"a,b"`.
    pub fn names(&self, i: usize) -> R<Vec<String>> {
        names_of(self.get(i)).ok_or_else(|| self.expected(i, "string or list of strings"))
    }

    /// Namespace kinds, as a list or a comma string.
    pub fn kinds(&self, i: usize) -> R<Namespaces> {
        let names = self.names(i)?;
        parse_kinds(&names).map_err(|e| self.fail(e))
    }
}

/// A file mode: a string read as octal, so "0755" and "755" mean what
/// they say; nil is `None`. Numbers are refused: Lua has no octal
/// literals, so `0755` is the decimal 755, mode 01363, and a number that
/// is meant (493) cannot be told from one that is not.
pub(crate) fn mode_of(v: &Value) -> Result<Option<u32>, String> {
    match v {
        Value::Nil => Ok(None),
        Value::String(s) => {
            let s = s.to_string_lossy();
            u32::from_str_radix(s.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Some)
                .ok_or_else(|| format!("bad mode '{s}' (octal, e.g. \"0755\")"))
        }
        Value::Integer(_) | Value::Number(_) => {
            let n = match v {
                Value::Integer(n) => n.to_string(),
                Value::Number(n) => n.to_string(),
                _ => unreachable!(),
            };
            Err(format!(
                "a mode is an octal string such as \"0755\", got the number {n} (Lua has no \
                 octal literals: 0755 is the decimal 755); write it as \"{}\"",
                if n.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                    format!("0{}", n.trim_start_matches('0'))
                } else {
                    format!("0{:o}", v.as_i64().unwrap_or(0).clamp(0, 0o7777))
                }
            ))
        }
        other => Err(format!(
            "mode expected (an octal string such as \"0755\"), got {}",
            typename(other)
        )),
    }
}

/// A list or comma string of names; `None` if the value is neither.
pub(crate) fn names_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(
            s.to_string_lossy()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        ),
        Value::Table(t) => {
            let mut out = Vec::new();
            for v in t.sequence_values::<Value>() {
                match v.ok()? {
                    Value::String(s) => out.push(s.to_string_lossy()),
                    _ => return None,
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// Parse namespace kind names.
pub(crate) fn parse_kinds(names: &[String]) -> Result<Namespaces, crate::Error> {
    names.iter().map(|n| n.parse::<Namespace>()).collect()
}

/// Reject keys of an options table that are not in `known`, suggesting the
/// closest one: `bind: unknown option 'recc' (did you mean 'rec'?)`.
pub(crate) fn check_keys(t: &Table, fname: &str, known: &[&str]) -> R<()> {
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let key = match &k {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(_) => continue, // positional entries are checked by the caller
            other => {
                return Err(Fail::Msg(format!(
                    "{fname}: option keys must be strings, got {}",
                    typename(other)
                )))
            }
        };
        if !known.contains(&key.as_str()) {
            let hint = crate::error::suggest(&key, known.iter().copied())
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(Fail::Msg(format!(
                "{fname}: unknown option '{key}'{hint}; known: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// A field of an options table as a bool (nil → default).
pub(crate) fn opt_bool(t: &Table, fname: &str, key: &str, default: bool) -> R<bool> {
    match t.get::<Value>(key)? {
        Value::Nil => Ok(default),
        Value::Boolean(b) => Ok(b),
        other => Err(Fail::Msg(format!(
            "{fname}: option '{key}' must be a boolean, got {}",
            typename(&other)
        ))),
    }
}

/// Bytes as a path; one with a NUL byte is refused (the kernel would see
/// only the part before it).
pub(crate) fn path_of(b: &[u8]) -> Result<PathBuf, String> {
    if b.contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    Ok(PathBuf::from(OsStr::from_bytes(b)))
}

/// A field of an options table as a path (any bytes but NUL) or nil.
pub(crate) fn opt_path(t: &Table, fname: &str, key: &str) -> R<Option<PathBuf>> {
    match t.get::<Value>(key)? {
        Value::Nil => Ok(None),
        Value::String(s) => path_of(&s.as_bytes())
            .map(Some)
            .map_err(|m| Fail::Msg(format!("{fname}: option '{key}': {m}"))),
        other => Err(Fail::Msg(format!(
            "{fname}: option '{key}' must be a string, got {}",
            typename(&other)
        ))),
    }
}

/// A field of an options table as a string or nil.
pub(crate) fn opt_str(t: &Table, fname: &str, key: &str) -> R<Option<String>> {
    match t.get::<Value>(key)? {
        Value::Nil => Ok(None),
        Value::String(s) => match s.to_str() {
            Ok(s) => Ok(Some(s.to_string())),
            Err(_) => Err(Fail::Msg(format!(
                "{fname}: option '{key}' is not valid UTF-8"
            ))),
        },
        Value::Integer(n) => Ok(Some(n.to_string())),
        other => Err(Fail::Msg(format!(
            "{fname}: option '{key}' must be a string, got {}",
            typename(&other)
        ))),
    }
}
