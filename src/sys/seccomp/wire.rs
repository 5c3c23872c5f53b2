//! A [`Policy`] as plain data, so a seccomp filter can cross to the
//! [`Supervisor`](crate::Supervisor). A child module of `seccomp`: it reads
//! the policy's private parts, and a policy comes back only through
//! [`Rule::new`], which checks every call name again.

use serde::{Deserialize, Serialize};

use super::{Action, Cond, Policy, Program, Rule, SAFE_PERSONAS};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PolicyWire {
    programs: Vec<ProgramWire>,
    /// Compiled programs (`seccomp.bpf`), as they are.
    #[serde(default)]
    raw: Vec<Vec<(u16, u8, u8, u32)>>,
    tty_guarded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProgramWire {
    rules: Vec<(String, Option<CondWire>)>,
    on_match: ActionWire,
    otherwise: ActionWire,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum CondWire {
    HasBits(u8, u64),
    Is32(u8, u32),
    NotIn32(u8, Vec<u32>),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum ActionWire {
    Allow,
    Errno(i32),
    Kill,
    Log,
}

impl From<Action> for ActionWire {
    fn from(a: Action) -> Self {
        match a {
            Action::Allow => ActionWire::Allow,
            Action::Errno(e) => ActionWire::Errno(e),
            Action::Kill => ActionWire::Kill,
            Action::Log => ActionWire::Log,
        }
    }
}

impl From<ActionWire> for Action {
    fn from(a: ActionWire) -> Self {
        match a {
            ActionWire::Allow => Action::Allow,
            ActionWire::Errno(e) => Action::Errno(e),
            ActionWire::Kill => Action::Kill,
            ActionWire::Log => Action::Log,
        }
    }
}

impl Policy {
    /// The policy as data.
    pub(crate) fn to_wire(&self) -> PolicyWire {
        PolicyWire {
            programs: self
                .programs
                .iter()
                .map(|p| ProgramWire {
                    rules: p
                        .rules
                        .iter()
                        .map(|r| {
                            let c = r.cond.as_ref().map(|c| match c {
                                Cond::HasBits(a, m) => CondWire::HasBits(*a, *m),
                                Cond::Is32(a, v) => CondWire::Is32(*a, *v),
                                Cond::NotIn32(a, vs) => CondWire::NotIn32(*a, vs.to_vec()),
                            });
                            (r.name.clone(), c)
                        })
                        .collect(),
                    on_match: p.on_match.into(),
                    otherwise: p.otherwise.into(),
                })
                .collect(),
            raw: self.raw.clone(),
            tty_guarded: self.tty_guarded,
        }
    }

    /// The policy again, every call name looked up anew.
    pub(crate) fn from_wire(w: PolicyWire) -> Result<Policy> {
        let mut programs = Vec::new();
        for p in w.programs {
            let mut rules = Vec::new();
            for (name, c) in p.rules {
                let cond = match c {
                    None => None,
                    Some(CondWire::HasBits(a, m)) => Some(Cond::HasBits(a, m)),
                    Some(CondWire::Is32(a, v)) => Some(Cond::Is32(a, v)),
                    // The only set a policy is made with.
                    Some(CondWire::NotIn32(a, vs)) if vs == SAFE_PERSONAS => {
                        Some(Cond::NotIn32(a, SAFE_PERSONAS))
                    }
                    Some(CondWire::NotIn32(..)) => {
                        return Err(Error::Invalid(format!(
                            "seccomp rule for {name}: an unknown set of values"
                        )))
                    }
                };
                rules.push(Rule::new(&name, cond)?);
            }
            programs.push(Program {
                rules,
                on_match: p.on_match.into(),
                otherwise: p.otherwise.into(),
            });
        }
        Ok(Policy {
            programs,
            raw: w.raw,
            tty_guarded: w.tty_guarded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_survive_the_wire() {
        let deny = Policy::new()
            .deny(
                &["mount".into(), "ptrace".into()],
                Action::Errno(libc::EPERM),
            )
            .unwrap();
        let allow = Policy::new()
            .allow(&["read".into(), "write".into()], Action::Kill)
            .unwrap();
        for p in [
            Policy::preset_default(libc::EPERM),
            Policy::preset_default(libc::ENOSYS).with_tty_guard(),
            deny,
            allow,
            Policy::tty_guard(),
        ] {
            let j = serde_json::to_string(&p.to_wire()).unwrap();
            let back = Policy::from_wire(serde_json::from_str(&j).unwrap()).unwrap();
            assert_eq!(back, p);
            assert_eq!(back.compile().unwrap(), p.compile().unwrap());
        }
    }
}
